package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

// PutCertificateDetails upserts parsed certificates, in one transaction.
func (s *Store) PutCertificateDetails(ctx context.Context, p store.PutCertificateDetailsParams) error {
	if err := codec.CheckCertificateDetails(p); err != nil || len(p.Details) == 0 {
		return err
	}
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		for _, d := range p.Details {
			i := d.Info
			if _, err := tx.Exec(ctx, `INSERT INTO certificate_details (org_id, tenant_id, app_object_id, key_id,
					thumbprint_sha1, thumbprint_sha256, subject, issuer, key_algorithm, key_size, not_before, not_after)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
				ON CONFLICT (org_id, tenant_id, app_object_id, key_id) DO UPDATE SET
					thumbprint_sha1 = excluded.thumbprint_sha1, thumbprint_sha256 = excluded.thumbprint_sha256,
					subject = excluded.subject, issuer = excluded.issuer, key_algorithm = excluded.key_algorithm,
					key_size = excluded.key_size, not_before = excluded.not_before, not_after = excluded.not_after`,
				string(p.Org), p.TenantID, d.AppObjectID, d.KeyID, i.ThumbprintSHA1, i.ThumbprintSHA256,
				i.Subject, i.Issuer, i.KeyAlgorithm, i.KeySize, tz(i.NotBefore), tz(i.NotAfter)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if isOrgMissing(err) {
			return fmt.Errorf("put certificate details: %w", store.ErrNotFound)
		}
		return fmt.Errorf("put certificate details: %w", err)
	}
	return nil
}

// CertificatesWithoutDetails lists certificate credentials with no
// certificate_details row.
func (s *Store) CertificatesWithoutDetails(ctx context.Context, p store.CertificatesWithoutDetailsParams) ([]store.CredentialRef, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	var out []store.CredentialRef
	err := s.readOrg(ctx, p.Org, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, `SELECT c.app_object_id, c.key_id FROM credentials c
			WHERE c.org_id = $1 AND c.tenant_id = $2 AND c.kind = 'certificate'
				AND NOT EXISTS (SELECT 1 FROM certificate_details d WHERE d.org_id = c.org_id AND d.tenant_id = c.tenant_id
					AND d.app_object_id = c.app_object_id AND d.key_id = c.key_id)
			ORDER BY c.app_object_id, c.key_id LIMIT $3`, string(p.Org), p.TenantID, limit)
		if err != nil {
			return err
		}
		var r store.CredentialRef
		_, err = pgx.ForEachRow(rows, []any{&r.AppObjectID, &r.KeyID}, func() error {
			out = append(out, r)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("certificates without details: %w", err)
	}
	return out, nil
}
