package postgres

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLibpqURLKeepsSecretsOffTheCommandLine: pg_dump's URL never holds a
// password or a client key's passphrase (it is on pg_dump's command line
// and in rotor's report); a URL that needs a passphrase is refused,
// without echoing it.
func TestLibpqURLKeepsSecretsOffTheCommandLine(t *testing.T) {
	got, err := libpqURL("postgres://owner:hunter2@db:5432/rotor?sslmode=verify-full&password=alsosecret&pool_max_conns=4")
	require.NoError(t, err)
	require.Equal(t, "postgres://owner@db:5432/rotor?sslmode=verify-full", got)

	_, err = libpqURL("postgres://owner@db/rotor?sslkey=/k.pem&sslpassword=keypass")
	require.ErrorContains(t, err, "sslpassword")
	require.NotContains(t, err.Error(), "keypass")
}
