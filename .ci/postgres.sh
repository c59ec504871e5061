# shellcheck shell=bash
# A throwaway PostgreSQL cluster for the tests, sourced by .ci/run (and by
# anyone who wants one locally: `source .ci/postgres.sh && pg_start`).
#
# pg_start installs PostgreSQL from Debian when it is missing (as root,
# apt-get; skipped when already installed), initialises a cluster in a
# temporary directory, starts it on a free loopback port with its socket in
# that directory, creates the test database, and exports
# ROTOR_TEST_DATABASE_URL (the cluster's superuser, over loopback TCP).
# pg_stop stops it and removes the directory; pg_start arranges for it to
# run at exit.
#
# Authentication is what a real deployment has: the superuser is trusted
# on loopback (the tests create their roles with it), every other role
# needs its password (scram-sha-256), so the tests prove rotor passes one.
# The test database's default collation is ICU en-US, not C, so a query
# whose order depends on collation fails the tests instead of passing by
# luck (rotor's columns are COLLATE "C").

pg_bin() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && { echo "$d"; return 0; }
	done
	return 1
}

pg_install() {
	if pg_bin >/dev/null; then
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "PostgreSQL is not installed and this is not root: apt-get install postgresql" >&2
		return 1
	fi
	echo "--- apt-get install postgresql"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends postgresql >/dev/null
	# Debian starts a cluster of its own on 5432; the tests do not use it.
	if command -v pg_lsclusters >/dev/null; then
		pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
			pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
		done
	fi
	pg_bin >/dev/null
}

# pg_as runs a command as the cluster's owner: initdb and postgres refuse
# root, so as root that is the postgres user.
pg_as() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pg_start() {
	local started=$SECONDS bin port
	pg_install || return 1
	bin=$(pg_bin)
	PG_DIR=$(mktemp -d /tmp/rotor-pg.XXXXXX)
	chmod 755 "$PG_DIR"
	[ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
	trap pg_stop EXIT
	pg_as "$bin/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-instructions >"$PG_DIR/initdb.log" 2>&1 || {
		cat "$PG_DIR/initdb.log" >&2
		return 1
	}
	cat >"$PG_DIR/data/pg_hba.conf" <<-'EOF'
		local all postgres             trust
		host  all postgres 127.0.0.1/32 trust
		host  all all      127.0.0.1/32 scram-sha-256
	EOF
	for port in $(seq 55432 55499); do
		pg_port_free "$port" || continue
		# Throwaway: no fsync. Enough connections for every test package's
		# pools at once.
		if pg_as "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 \
			-o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=500 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
			start >/dev/null; then
			PG_PORT=$port
			break
		fi
	done
	if [ -z "${PG_PORT:-}" ]; then
		echo "PostgreSQL did not start:" >&2
		cat "$PG_DIR/log" >&2
		return 1
	fi
	local admin="postgres://postgres@127.0.0.1:$PG_PORT"
	if ! "$bin/psql" -qAt "$admin/postgres" -c "CREATE DATABASE rotor_test TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'" 2>/dev/null; then
		"$bin/psql" -qAt "$admin/postgres" -c "CREATE DATABASE rotor_test" >/dev/null
	fi
	export ROTOR_TEST_DATABASE_URL="$admin/rotor_test?sslmode=disable"
	echo "PostgreSQL $("$bin/psql" -qAt "$ROTOR_TEST_DATABASE_URL" -c 'SHOW server_version') on 127.0.0.1:$PG_PORT in $((SECONDS - started))s: ROTOR_TEST_DATABASE_URL=$ROTOR_TEST_DATABASE_URL"
}

pg_stop() {
	[ -n "${PG_DIR:-}" ] || return 0
	local bin
	bin=$(pg_bin) && [ -d "$PG_DIR/data" ] && pg_as "$bin/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
	rm -rf "$PG_DIR"
	PG_DIR=
}
