package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

// certRow is the certificate_details columns of a credential read, all
// NULL when the certificate has not been read.
type certRow struct {
	sha1, sha256, subject, issuer, alg sql.NullString
	size                               sql.NullInt64
	notBefore, notAfter                sql.NullString
}

func (r certRow) info() (*domain.CertificateInfo, error) {
	if !r.sha1.Valid {
		return nil, nil
	}
	ci := &domain.CertificateInfo{ThumbprintSHA1: r.sha1.String, ThumbprintSHA256: r.sha256.String,
		Subject: r.subject.String, Issuer: r.issuer.String, KeyAlgorithm: r.alg.String, KeySize: int(r.size.Int64)}
	var err error
	if ci.NotBefore, err = decTime(r.notBefore); err != nil {
		return nil, err
	}
	if ci.NotAfter, err = decTime(r.notAfter); err != nil {
		return nil, err
	}
	return ci, nil
}

// PutCertificateDetails upserts parsed certificates, in one transaction.
func (s *Store) PutCertificateDetails(ctx context.Context, p store.PutCertificateDetailsParams) error {
	if err := codec.CheckCertificateDetails(p); err != nil || len(p.Details) == 0 {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put certificate details: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	st, err := tx.PrepareContext(ctx, `INSERT INTO certificate_details (org_id, tenant_id, app_object_id, key_id,
			thumbprint_sha1, thumbprint_sha256, subject, issuer, key_algorithm, key_size, not_before, not_after)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (org_id, tenant_id, app_object_id, key_id) DO UPDATE SET
			thumbprint_sha1 = excluded.thumbprint_sha1, thumbprint_sha256 = excluded.thumbprint_sha256,
			subject = excluded.subject, issuer = excluded.issuer, key_algorithm = excluded.key_algorithm,
			key_size = excluded.key_size, not_before = excluded.not_before, not_after = excluded.not_after`)
	if err != nil {
		return fmt.Errorf("put certificate details: %w", err)
	}
	defer func() { _ = st.Close() }()
	for _, d := range p.Details {
		i := d.Info
		if _, err := st.ExecContext(ctx, string(p.Org), p.TenantID, d.AppObjectID, d.KeyID, i.ThumbprintSHA1, i.ThumbprintSHA256,
			i.Subject, i.Issuer, i.KeyAlgorithm, i.KeySize, encTime(i.NotBefore), encTime(i.NotAfter)); err != nil {
			if isForeignKeyViolation(err) {
				return fmt.Errorf("put certificate details: application %s: %w", d.AppObjectID, store.ErrNotFound)
			}
			return fmt.Errorf("put certificate details of %s: %w", d.KeyID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put certificate details: %w", err)
	}
	return nil
}

// CertificatesWithoutDetails lists certificate credentials with no
// certificate_details row. It runs after every sync: the partial index
// (0017) makes it visit certificates only, not a tenant's 100,000 secrets;
// INDEXED BY because SQLite's planner, without statistics, prefers the
// primary key.
func (s *Store) CertificatesWithoutDetails(ctx context.Context, p store.CertificatesWithoutDetailsParams) ([]store.CredentialRef, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.r.QueryContext(ctx, `SELECT c.app_object_id, c.key_id FROM credentials c INDEXED BY credentials_certificates
		WHERE c.org_id = ? AND c.tenant_id = ? AND c.kind = 'certificate'
			AND NOT EXISTS (SELECT 1 FROM certificate_details d WHERE d.org_id = c.org_id AND d.tenant_id = c.tenant_id
				AND d.app_object_id = c.app_object_id AND d.key_id = c.key_id)
		ORDER BY c.app_object_id, c.key_id LIMIT ?`, string(p.Org), p.TenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("certificates without details: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []store.CredentialRef
	for rows.Next() {
		var r store.CredentialRef
		if err := rows.Scan(&r.AppObjectID, &r.KeyID); err != nil {
			return nil, fmt.Errorf("certificates without details: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
