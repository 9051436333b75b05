-- The lowest PostgreSQL major version a release runs on (0: any).

-- +goose Up
ALTER TABLE releases ADD COLUMN requires_postgres INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE releases DROP COLUMN requires_postgres;
