-- Air-gapped installations: offline bundles issued per customer (their
-- sequence only grows), the keys installations sign their exports with, and
-- the export files already imported.

-- +goose Up
-- One row per bundle issued; the next bundle of a customer gets the highest
-- sequence plus one.
CREATE TABLE bundles (
    product    TEXT NOT NULL,
    customer   TEXT NOT NULL,
    sequence   BIGINT NOT NULL,
    issued_at  TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (product, customer, sequence),
    FOREIGN KEY (product, customer) REFERENCES customers (product, name)
);

-- The ed25519 key an installation signs its exports with, registered by its
-- first import (bound to an enrollment key of the customer), and the highest
-- report sequence imported from it: reports at or below are not recorded
-- again, and bundles acknowledge them.
CREATE TABLE installation_keys (
    product          TEXT NOT NULL,
    instance_id      TEXT NOT NULL,
    customer         TEXT NOT NULL,
    public_key       BLOB NOT NULL,
    reported_through BIGINT NOT NULL DEFAULT 0,
    created_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (product, instance_id),
    FOREIGN KEY (product, customer) REFERENCES customers (product, name)
);
CREATE INDEX installation_keys_customer ON installation_keys (product, customer);

-- Export files imported, by the SHA-256 of their signed payload: importing
-- the same file again changes nothing.
CREATE TABLE imported_exports (
    id          TEXT PRIMARY KEY,
    product     TEXT NOT NULL,
    customer    TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    reports     INTEGER NOT NULL,
    recorded    INTEGER NOT NULL,
    imported_at TIMESTAMP NOT NULL,
    imported_by TEXT NOT NULL
);

-- +goose Down
DROP TABLE imported_exports;
DROP TABLE installation_keys;
DROP TABLE bundles;
