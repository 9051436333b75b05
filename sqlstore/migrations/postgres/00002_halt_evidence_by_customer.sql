-- Auto-halt evidence is counted per customer and installation, and only from
-- installations the server knew before they reported (release.Policy).

-- +goose Up
ALTER TABLE products ADD COLUMN halt_min_customers INTEGER NOT NULL DEFAULT 2;
-- Health reports were not attributed to a customer before; old rows get ''.
ALTER TABLE health_reports ADD COLUMN customer TEXT NOT NULL DEFAULT '';
-- The version the installation was last seen on before the check-in that
-- carried the report; '' when that check-in was its first (rows written
-- before this migration too: they no longer count toward auto-halt).
ALTER TABLE health_reports ADD COLUMN seen_on TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN seen_on TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE events DROP COLUMN seen_on;
ALTER TABLE health_reports DROP COLUMN seen_on;
ALTER TABLE health_reports DROP COLUMN customer;
ALTER TABLE products DROP COLUMN halt_min_customers;
