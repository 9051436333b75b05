package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ringfence/ringfence/release"
)

// --- products ---

const productCols = `name, required_gates, halt_disabled, halt_window_seconds, halt_min_failures, halt_min_failure_share, halt_min_customers, created_at`

func scanProduct(row scanner) (release.Product, error) {
	var p release.Product
	var gates string
	var window int64
	if err := row.Scan(&p.Name, &gates, &p.Policy.Disabled, &window, &p.Policy.MinFailures, &p.Policy.MinFailureShare, &p.Policy.MinCustomers, &p.CreatedAt); err != nil {
		return release.Product{}, err
	}
	if err := json.Unmarshal([]byte(gates), &p.RequiredGates); err != nil {
		return release.Product{}, fmt.Errorf("product %s: required gates: %w", p.Name, err)
	}
	p.Policy.Window = time.Duration(window) * time.Second
	p.CreatedAt = p.CreatedAt.UTC()
	return p, nil
}

// productArgs are p's column values after name, in productCols order.
func productArgs(p release.Product) ([]any, error) {
	gates := p.RequiredGates
	if gates == nil {
		gates = []string{}
	}
	g, err := json.Marshal(gates)
	if err != nil {
		return nil, fmt.Errorf("encode required gates: %w", err)
	}
	return []any{string(g), p.Policy.Disabled, int64(p.Policy.Window / time.Second), p.Policy.MinFailures, p.Policy.MinFailureShare, p.Policy.MinCustomers}, nil
}

// CreateProduct creates a product; ECONFLICT if it exists. A zero policy
// gets the default one.
func (s *Store) CreateProduct(ctx context.Context, actor string, p release.Product) (release.Product, error) {
	if p.Policy == (release.Policy{}) {
		p.Policy = release.DefaultPolicy()
	}
	p.Policy.Window = p.Policy.Window.Truncate(time.Second)
	if p.RequiredGates == nil {
		p.RequiredGates = []string{}
	}
	if err := p.Validate(); err != nil {
		return release.Product{}, err
	}
	p.CreatedAt = now()
	args, err := productArgs(p)
	if err != nil {
		return release.Product{}, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if ok, err := exists(ctx, tx, `SELECT 1 FROM products WHERE name = $1`, p.Name); err != nil {
			return fmt.Errorf("create product %s: %w", p.Name, err)
		} else if ok {
			return release.Errorf(release.ECONFLICT, "product %s already exists", p.Name)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO products (`+productCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			append(append([]any{p.Name}, args...), p.CreatedAt)...)
		if err != nil {
			return fmt.Errorf("create product %s: %w", p.Name, err)
		}
		return audit(ctx, tx, actor, "product.create", "product/"+p.Name, nil, p)
	})
	if err != nil {
		return release.Product{}, err
	}
	return p, nil
}

// UpdateProduct loads product, lets change modify it (its name and creation
// time are kept) and stores the result.
func (s *Store) UpdateProduct(ctx context.Context, actor, product string, change func(*release.Product) error) (release.Product, error) {
	var p release.Product
	err := s.write(ctx, func(tx *sql.Tx) error {
		before, err := scanProduct(tx.QueryRowContext(ctx, s.forUpdate(`SELECT `+productCols+` FROM products WHERE name = $1`), product))
		if err != nil {
			return notFound(err, "product %s", product)
		}
		p = before
		p.RequiredGates = append([]string{}, before.RequiredGates...)
		if err := change(&p); err != nil {
			return err
		}
		p.Name, p.CreatedAt = before.Name, before.CreatedAt
		p.Policy.Window = p.Policy.Window.Truncate(time.Second)
		if err := p.Validate(); err != nil {
			return err
		}
		args, err := productArgs(p)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE products SET required_gates = $1, halt_disabled = $2, halt_window_seconds = $3,
			halt_min_failures = $4, halt_min_failure_share = $5, halt_min_customers = $6 WHERE name = $7`, append(args, product)...)
		if err != nil {
			return fmt.Errorf("update product %s: %w", product, err)
		}
		return audit(ctx, tx, actor, "product.update", "product/"+product, before, p)
	})
	return p, err
}

// GetProduct returns a product; ENOTFOUND if unknown.
func (s *Store) GetProduct(ctx context.Context, name string) (release.Product, error) {
	p, err := scanProduct(s.rdb.QueryRowContext(ctx, `SELECT `+productCols+` FROM products WHERE name = $1`, name))
	if err != nil {
		return release.Product{}, notFound(err, "product %s", name)
	}
	return p, nil
}

// ListProducts returns all products by name.
func (s *Store) ListProducts(ctx context.Context) ([]release.Product, error) {
	return queryAll(ctx, s.rdb, scanProduct, "list products", `SELECT `+productCols+` FROM products ORDER BY name`)
}

// productExists returns ENOTFOUND unless product exists.
func productExists(ctx context.Context, tx *sql.Tx, product string) error {
	ok, err := exists(ctx, tx, `SELECT 1 FROM products WHERE name = $1`, product)
	if err != nil {
		return fmt.Errorf("look up product %s: %w", product, err)
	}
	if !ok {
		return release.Errorf(release.ENOTFOUND, "product %s not found", product)
	}
	return nil
}

// --- rings ---

const ringCols = `product, name, position, soak_seconds, rollout_percent, min_healthy`

func scanRing(row scanner) (release.Ring, error) {
	var r release.Ring
	var soak int64
	if err := row.Scan(&r.Product, &r.Name, &r.Position, &soak, &r.RolloutPercent, &r.MinHealthy); err != nil {
		return release.Ring{}, err
	}
	r.SoakTime = time.Duration(soak) * time.Second
	return r, nil
}

// CreateRing creates a ring of r.Product; ECONFLICT if it exists.
func (s *Store) CreateRing(ctx context.Context, actor string, r release.Ring) (release.Ring, error) {
	if err := r.Validate(); err != nil {
		return release.Ring{}, err
	}
	r.SoakTime = r.SoakTime.Truncate(time.Second)
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := productExists(ctx, tx, r.Product); err != nil {
			return err
		}
		if ok, err := exists(ctx, tx, `SELECT 1 FROM rings WHERE product = $1 AND name = $2`, r.Product, r.Name); err != nil {
			return fmt.Errorf("create ring %s/%s: %w", r.Product, r.Name, err)
		} else if ok {
			return release.Errorf(release.ECONFLICT, "ring %s of %s already exists", r.Name, r.Product)
		}
		if err := positionFree(ctx, tx, r.Product, r.Name, r.Position); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO rings (`+ringCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
			r.Product, r.Name, r.Position, int64(r.SoakTime/time.Second), r.RolloutPercent, r.MinHealthy)
		if err != nil {
			return fmt.Errorf("create ring %s/%s: %w", r.Product, r.Name, err)
		}
		return audit(ctx, tx, actor, "ring.create", "product/"+r.Product+"/ring/"+r.Name, nil, r)
	})
	return r, err
}

// UpdateRing loads a ring, lets change modify it (product and name are kept)
// and stores it.
func (s *Store) UpdateRing(ctx context.Context, actor, product, name string, change func(*release.Ring) error) (release.Ring, error) {
	var r release.Ring
	err := s.write(ctx, func(tx *sql.Tx) error {
		before, err := scanRing(tx.QueryRowContext(ctx, s.forUpdate(`SELECT `+ringCols+` FROM rings WHERE product = $1 AND name = $2`), product, name))
		if err != nil {
			return notFound(err, "ring %s of %s", name, product)
		}
		r = before
		if err := change(&r); err != nil {
			return err
		}
		r.Product, r.Name = before.Product, before.Name
		r.SoakTime = r.SoakTime.Truncate(time.Second)
		if err := r.Validate(); err != nil {
			return err
		}
		if err := positionFree(ctx, tx, product, name, r.Position); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE rings SET position = $1, soak_seconds = $2, rollout_percent = $3, min_healthy = $4 WHERE product = $5 AND name = $6`,
			r.Position, int64(r.SoakTime/time.Second), r.RolloutPercent, r.MinHealthy, product, name)
		if err != nil {
			return fmt.Errorf("update ring %s/%s: %w", product, name, err)
		}
		return audit(ctx, tx, actor, "ring.update", "product/"+product+"/ring/"+name, before, r)
	})
	return r, err
}

// positionFree refuses a position another ring of product holds: rings
// at one position would have no order between them.
func positionFree(ctx context.Context, tx *sql.Tx, product, ring string, position int) error {
	var other string
	err := tx.QueryRowContext(ctx, `SELECT name FROM rings WHERE product = $1 AND position = $2 AND name <> $3`, product, position, ring).Scan(&other)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("look up ring positions of %s: %w", product, err)
	}
	return release.Errorf(release.ECONFLICT, "ring %s of %s is already at position %d: give each ring its own position (they are promoted in position order)", other, product, position)
}

// GetRing returns one ring of product; ENOTFOUND if unknown.
func (s *Store) GetRing(ctx context.Context, product, name string) (release.Ring, error) {
	r, err := scanRing(s.rdb.QueryRowContext(ctx, `SELECT `+ringCols+` FROM rings WHERE product = $1 AND name = $2`, product, name))
	return r, notFound(err, "ring %s of %s", name, product)
}

// ListRings returns a product's rings in rollout order.
func (s *Store) ListRings(ctx context.Context, product string) ([]release.Ring, error) {
	return queryAll(ctx, s.rdb, scanRing, "list rings", `SELECT `+ringCols+` FROM rings WHERE product = $1 ORDER BY position, name`, product)
}

// --- customers ---

const customerCols = `product, name, ring, created_at`

func scanCustomer(row scanner) (release.Customer, error) {
	var c release.Customer
	if err := row.Scan(&c.Product, &c.Name, &c.Ring, &c.CreatedAt); err != nil {
		return release.Customer{}, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, nil
}

// ringExists returns ENOTFOUND unless product has ring.
func ringExists(ctx context.Context, tx *sql.Tx, product, ring string) error {
	ok, err := exists(ctx, tx, `SELECT 1 FROM rings WHERE product = $1 AND name = $2`, product, ring)
	if err != nil {
		return fmt.Errorf("look up ring %s/%s: %w", product, ring, err)
	}
	if !ok {
		return release.Errorf(release.ENOTFOUND, "ring %s of %s not found", ring, product)
	}
	return nil
}

// CreateCustomer creates a customer of c.Product in c.Ring; ECONFLICT if it
// exists.
func (s *Store) CreateCustomer(ctx context.Context, actor string, c release.Customer) (release.Customer, error) {
	if err := c.Validate(); err != nil {
		return release.Customer{}, err
	}
	c.CreatedAt = now()
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := productExists(ctx, tx, c.Product); err != nil {
			return err
		}
		if err := ringExists(ctx, tx, c.Product, c.Ring); err != nil {
			return err
		}
		if ok, err := exists(ctx, tx, `SELECT 1 FROM customers WHERE product = $1 AND name = $2`, c.Product, c.Name); err != nil {
			return fmt.Errorf("create customer %s/%s: %w", c.Product, c.Name, err)
		} else if ok {
			return release.Errorf(release.ECONFLICT, "customer %s of %s already exists", c.Name, c.Product)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO customers (`+customerCols+`) VALUES ($1, $2, $3, $4)`, c.Product, c.Name, c.Ring, c.CreatedAt); err != nil {
			return fmt.Errorf("create customer %s/%s: %w", c.Product, c.Name, err)
		}
		return audit(ctx, tx, actor, "customer.create", "product/"+c.Product+"/customer/"+c.Name, nil, c)
	})
	return c, err
}

// UpdateCustomer loads a customer, lets change modify it (only its ring
// may change: product, name and creation time are kept) and stores it; the
// ring must exist.
func (s *Store) UpdateCustomer(ctx context.Context, actor, product, name string, change func(*release.Customer) error) (release.Customer, error) {
	var c release.Customer
	err := s.write(ctx, func(tx *sql.Tx) error {
		before, err := scanCustomer(tx.QueryRowContext(ctx, s.forUpdate(`SELECT `+customerCols+` FROM customers WHERE product = $1 AND name = $2`), product, name))
		if err != nil {
			return notFound(err, "customer %s of %s", name, product)
		}
		c = before
		if err := change(&c); err != nil {
			return err
		}
		c.Product, c.Name, c.CreatedAt = before.Product, before.Name, before.CreatedAt
		if err := ringExists(ctx, tx, product, c.Ring); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE customers SET ring = $1 WHERE product = $2 AND name = $3`, c.Ring, product, name); err != nil {
			return fmt.Errorf("update customer %s/%s: %w", product, name, err)
		}
		return audit(ctx, tx, actor, "customer.update", "product/"+product+"/customer/"+name, before, c)
	})
	return c, err
}

// GetCustomer returns one customer of product; ENOTFOUND if unknown.
func (s *Store) GetCustomer(ctx context.Context, product, name string) (release.Customer, error) {
	c, err := scanCustomer(s.rdb.QueryRowContext(ctx, `SELECT `+customerCols+` FROM customers WHERE product = $1 AND name = $2`, product, name))
	return c, notFound(err, "customer %s of %s", name, product)
}

// ListCustomers returns a product's customers by name.
func (s *Store) ListCustomers(ctx context.Context, product string) ([]release.Customer, error) {
	return queryAll(ctx, s.rdb, scanCustomer, "list customers", `SELECT `+customerCols+` FROM customers WHERE product = $1 ORDER BY name`, product)
}

// CustomerExists reports whether product has a customer named customer.
func (s *Store) CustomerExists(ctx context.Context, product, customer string) (bool, error) {
	ok, err := exists(ctx, s.rdb, `SELECT 1 FROM customers WHERE product = $1 AND name = $2`, product, customer)
	if err != nil {
		return false, fmt.Errorf("look up customer %s of %s: %w", customer, product, err)
	}
	return ok, nil
}
