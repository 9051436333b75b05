package sqlstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// pipelineCheckIns is WriteCheckIns on PostgreSQL: the batch's statements
// go to the server in one round trip on one connection, as one implicit
// transaction (pgx's batch: PostgreSQL commits at its Sync, or rolls all of
// it back at the first error). Answered means committed, as with an
// explicit transaction, without a round trip each for BEGIN, every
// statement and COMMIT, which every check-in waiting for the batch would
// wait for.
func (s *Store) pipelineCheckIns(ctx context.Context, recs []CheckInRecord) ([]InstallationRef, error) {
	stmts, created := s.checkInStatements(recs)
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("record check-ins: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("connection is a %T, not pgx's", driverConn)
		}
		var b pgx.Batch
		for _, st := range stmts {
			q := b.Queue(st.sql, st.args...)
			if st.scan != nil {
				q.Query(func(rows pgx.Rows) error {
					for rows.Next() {
						if err := st.scan(rows); err != nil {
							return err
						}
					}
					return rows.Err()
				})
			}
		}
		return c.Conn().SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return nil, fmt.Errorf("record check-ins: %w", err)
	}
	return created.refs, nil
}
