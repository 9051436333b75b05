package pgcheck

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// CheckFingerprint is the comparison pg check makes on every run
// (checkFingerprint), on its own: the tests' way to compare one database
// with its baseline file, or with the baseline in its ringfence schema when
// baselineFile is empty.
func CheckFingerprint(ctx context.Context, conn *pgx.Conn, baselineFile string) ([]Finding, bool, error) {
	return checkFingerprint(ctx, conn, baselineFile, nil)
}

// FindDuplicates is Duplicates of t's database alone.
func FindDuplicates(ctx context.Context, t *Target, opts DuplicatesOptions) (*DatabaseDuplicates, error) {
	rep, err := Duplicates(ctx, t, opts)
	if err != nil {
		return nil, err
	}
	return rep.Databases[0], nil
}
