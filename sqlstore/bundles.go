package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ringfence/ringfence/release"
)

// BundleRecord is one offline bundle issued to a customer.
type BundleRecord struct {
	Product   string    `json:"product"`
	Customer  string    `json:"customer"`
	Sequence  int64     `json:"sequence"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// NextBundle allocates the next sequence number of customer's bundles
// (highest so far plus one, from 1), records the bundle and audits it, and
// returns the sequence with the acknowledgements the bundle must carry: per
// installation of the customer, the highest report sequence imported from
// its exports. ENOTFOUND if the customer does not exist.
func (s *Store) NextBundle(ctx context.Context, actor string, b BundleRecord) (int64, []release.ExportAck, error) {
	var seq int64
	var acks []release.ExportAck
	err := s.writeSilent(ctx, func(tx *sql.Tx) error {
		if err := s.serialize(ctx, tx, "bundles/"+b.Product+"/"+b.Customer); err != nil {
			return err
		}
		if ok, err := exists(ctx, tx, `SELECT 1 FROM customers WHERE product = $1 AND name = $2`, b.Product, b.Customer); err != nil {
			return fmt.Errorf("look up customer %s: %w", b.Customer, err)
		} else if !ok {
			return release.Errorf(release.ENOTFOUND, "customer %s of %s not found", b.Customer, b.Product)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(sequence), 0) + 1 FROM bundles WHERE product = $1 AND customer = $2`,
			b.Product, b.Customer).Scan(&seq); err != nil {
			return fmt.Errorf("next bundle sequence of %s: %w", b.Customer, err)
		}
		b.Sequence = seq
		if _, err := tx.ExecContext(ctx, `INSERT INTO bundles (product, customer, sequence, issued_at, expires_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6)`, b.Product, b.Customer, seq, b.IssuedAt.UTC(), b.ExpiresAt.UTC(), actor); err != nil {
			return fmt.Errorf("record bundle %d of %s: %w", seq, b.Customer, err)
		}
		var err error
		acks, err = queryAll(ctx, tx, func(row scanner) (release.ExportAck, error) {
			var a release.ExportAck
			return a, row.Scan(&a.InstanceID, &a.Through)
		}, "load export acknowledgements", `SELECT instance_id, reported_through FROM installation_keys
			WHERE product = $1 AND customer = $2 AND reported_through > 0 ORDER BY instance_id`, b.Product, b.Customer)
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, "bundle.create", "customer/"+b.Product+"/"+b.Customer, nil, b)
	})
	if err != nil {
		return 0, nil, err
	}
	if acks == nil {
		acks = []release.ExportAck{}
	}
	return seq, acks, nil
}

// ExportImport is a verified export to record: the server has checked its
// signature with PublicKey and the key's binding to an enrollment key of
// Customer.
type ExportImport struct {
	// ID names the export file: the SHA-256 of its signed payload, in hex.
	ID         string
	Product    string
	Customer   string
	InstanceID string
	PublicKey  []byte
	Reports    []release.Report
	// ReceivedAt is the import time: the reports' check-ins arrive now, as
	// far as auto-halt's windows are concerned.
	ReceivedAt time.Time
}

// ImportExport records an export's reports not imported before as check-ins
// of its installation (RecordCheckIns' rules: known installations, evidence
// per customer), in one transaction with the installation's key and
// high-water mark, the file's id and the audit entry. The same file twice,
// or reports at or below the high-water mark, record nothing again. The
// first import registers the installation's key; later ones must be signed
// by the same key for the same customer (EFORBIDDEN otherwise).
func (s *Store) ImportExport(ctx context.Context, actor string, imp ExportImport) (release.ImportResult, error) {
	res := release.ImportResult{ID: imp.ID, Customer: imp.Customer, InstanceID: imp.InstanceID, Reports: len(imp.Reports), Failing: []release.Version{}}
	err := s.writeSilent(ctx, func(tx *sql.Tx) error {
		if err := s.serialize(ctx, tx, "exports/"+imp.Product+"/"+imp.InstanceID); err != nil {
			return err
		}
		if ok, err := exists(ctx, tx, `SELECT 1 FROM imported_exports WHERE id = $1`, imp.ID); err != nil {
			return fmt.Errorf("look up export %s: %w", imp.ID, err)
		} else if ok {
			res.Duplicate = true
			return tx.QueryRowContext(ctx, `SELECT reported_through FROM installation_keys WHERE product = $1 AND instance_id = $2`,
				imp.Product, imp.InstanceID).Scan(&res.Through)
		}
		var customer string
		var pub []byte
		err := tx.QueryRowContext(ctx, `SELECT customer, public_key, reported_through FROM installation_keys WHERE product = $1 AND instance_id = $2`,
			imp.Product, imp.InstanceID).Scan(&customer, &pub, &res.Through)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO installation_keys (product, instance_id, customer, public_key, created_at)
				VALUES ($1, $2, $3, $4, $5)`, imp.Product, imp.InstanceID, imp.Customer, imp.PublicKey, imp.ReceivedAt.UTC()); err != nil {
				return fmt.Errorf("register the export key of %s: %w", imp.InstanceID, err)
			}
		case err != nil:
			return fmt.Errorf("look up the export key of %s: %w", imp.InstanceID, err)
		case customer != imp.Customer:
			return release.Errorf(release.EFORBIDDEN, "installation %s belongs to another customer than %s", imp.InstanceID, imp.Customer)
		case !bytes.Equal(pub, imp.PublicKey):
			return release.Errorf(release.EFORBIDDEN, "export of %s is signed by a key other than the one the installation registered", imp.InstanceID)
		}
		var recs []CheckInRecord
		for _, r := range imp.Reports {
			if r.Seq <= res.Through {
				continue
			}
			recs = append(recs, CheckInRecord{Product: imp.Product, Customer: imp.Customer, InstanceID: imp.InstanceID,
				Version: r.Version, Health: r.Health, Events: r.Events, ReceivedAt: imp.ReceivedAt})
			res.Events += len(r.Events)
			for _, e := range r.Events {
				if e.Kind == release.EventUpgradeFailed || e.Kind == release.EventIntegrityFailed {
					res.Failing = appendVersion(res.Failing, e.To)
				}
			}
			if r.Health != nil && r.Health.Status.Failing() {
				res.Failing = appendVersion(res.Failing, r.Version)
			}
			res.Through = r.Seq
		}
		res.Recorded = len(recs)
		if len(recs) > 0 {
			if _, err := s.recordCheckIns(ctx, tx, recs); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE installation_keys SET reported_through = $1 WHERE product = $2 AND instance_id = $3`,
				res.Through, imp.Product, imp.InstanceID); err != nil {
				return fmt.Errorf("record the high-water mark of %s: %w", imp.InstanceID, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO imported_exports (id, product, customer, instance_id, reports, recorded, imported_at, imported_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, imp.ID, imp.Product, imp.Customer, imp.InstanceID, len(imp.Reports), res.Recorded,
			imp.ReceivedAt.UTC(), actor); err != nil {
			return fmt.Errorf("record export %s: %w", imp.ID, err)
		}
		return audit(ctx, tx, actor, "export.import", "installation/"+imp.Product+"/"+imp.InstanceID, nil, map[string]any{
			"export": imp.ID, "customer": imp.Customer, "reports": len(imp.Reports), "recorded": res.Recorded,
			"events": res.Events, "reported_through": res.Through})
	})
	if err != nil {
		return release.ImportResult{}, err
	}
	return res, nil
}

// appendVersion appends v unless vs holds it.
func appendVersion(vs []release.Version, v release.Version) []release.Version {
	for _, o := range vs {
		if o == v {
			return vs
		}
	}
	return append(vs, v)
}
