package pgcheck

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// riskSet is what the collation inventory says a check must look at.
type riskSet struct {
	// indexes are B-tree (and other) index OIDs depending on an at-risk
	// collation.
	indexes map[uint32]bool
	// partitioned are partitioned tables whose key uses one.
	partitioned map[uint32]bool
	// checks are CHECK constraint OIDs comparing under one.
	checks map[uint32]bool
	// findings are PostgreSQL's own collation version mismatches.
	findings   []Finding
	collations int
	// inv is the inventory the set was read from.
	inv *DatabaseInventory
}

// collationRisk reads the database's collation inventory.
func collationRisk(ctx context.Context, conn *pgx.Conn, db string) (*riskSet, error) {
	inv, err := ReadInventory(ctx, conn)
	if err != nil {
		return nil, err
	}
	r := &riskSet{indexes: map[uint32]bool{}, partitioned: map[uint32]bool{}, checks: map[uint32]bool{},
		findings: VersionMismatches(inv), collations: len(inv.Collations), inv: inv}
	for _, o := range inv.Objects {
		if !o.AtRisk {
			continue
		}
		switch o.Type {
		case ObjectIndex, ObjectUniqueConstraint, ObjectPrimaryKey, ObjectExclusionConstraint, ObjectMatviewIndex:
			r.indexes[o.OID] = true
		case ObjectPartitionKey:
			r.partitioned[o.OID] = true
		case ObjectCheckConstraint:
			r.checks[o.OID] = true
		}
	}
	return r, nil
}

func (r *riskSet) partitionedOIDs() []uint32 { return setOIDs(r.partitioned) }
func (r *riskSet) checkOIDs() []uint32       { return setOIDs(r.checks) }

func setOIDs(m map[uint32]bool) []uint32 {
	out := make([]uint32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
