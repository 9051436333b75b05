-- +goose Up
CREATE TABLE products (
    name                   TEXT PRIMARY KEY,
    -- JSON array of the gate names every release must pass before ring 0.
    required_gates         TEXT NOT NULL,
    halt_disabled          BOOLEAN NOT NULL DEFAULT FALSE,
    halt_window_seconds    BIGINT NOT NULL,
    halt_min_failures      INTEGER NOT NULL,
    halt_min_failure_share REAL NOT NULL,
    created_at             TIMESTAMP NOT NULL
);

-- A product's rollout stages; releases enter them by position, 0 first.
CREATE TABLE rings (
    product         TEXT NOT NULL REFERENCES products (name),
    name            TEXT NOT NULL,
    position        INTEGER NOT NULL CHECK (position >= 0),
    soak_seconds    BIGINT NOT NULL,
    rollout_percent REAL NOT NULL CHECK (rollout_percent BETWEEN 0 AND 100),
    min_healthy     INTEGER NOT NULL CHECK (min_healthy >= 0),
    PRIMARY KEY (product, name)
);

CREATE TABLE customers (
    product    TEXT NOT NULL,
    name       TEXT NOT NULL,
    ring       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (product, name),
    FOREIGN KEY (product, ring) REFERENCES rings (product, name)
);

-- Enrollment keys authenticate installations; only the SHA-256 of the key is stored.
CREATE TABLE enrollment_keys (
    id         TEXT PRIMARY KEY,
    product    TEXT NOT NULL,
    customer   TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    prefix     TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at TIMESTAMP,
    FOREIGN KEY (product, customer) REFERENCES customers (product, name)
);

CREATE TABLE releases (
    product          TEXT NOT NULL REFERENCES products (name),
    version          TEXT NOT NULL,
    notes_url        TEXT NOT NULL DEFAULT '',
    required_stop    BOOLEAN NOT NULL DEFAULT FALSE,
    rollback_safe_to TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMP NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('ok', 'paused', 'pulled')),
    -- JSON of release.Pause / release.Pull; NULL when not paused / pulled.
    paused           TEXT,
    pull             TEXT,
    -- Set once when auto-halt paused the release; it never halts it again,
    -- so a person's resume is not overridden by the same evidence.
    auto_halted_at   TIMESTAMP,
    PRIMARY KEY (product, version)
);

-- A release's entry into a ring: recorded by the promotion rules, or forced
-- by a person with a reason.
CREATE TABLE promotions (
    product TEXT NOT NULL,
    version TEXT NOT NULL,
    ring       TEXT NOT NULL,
    entered_at TIMESTAMP NOT NULL,
    forced     BOOLEAN NOT NULL,
    by_actor   TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (product, version, ring),
    FOREIGN KEY (product, version) REFERENCES releases (product, version),
    FOREIGN KEY (product, ring) REFERENCES rings (product, name)
);

-- Every posted gate result; the latest per gate counts.
CREATE TABLE gate_results (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    product   TEXT NOT NULL,
    version   TEXT NOT NULL,
    name      TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('pass', 'fail')),
    url       TEXT NOT NULL DEFAULT '',
    posted_by TEXT NOT NULL,
    posted_at TIMESTAMP NOT NULL,
    FOREIGN KEY (product, version) REFERENCES releases (product, version)
);
CREATE INDEX gate_results_release ON gate_results (product, version);

CREATE TABLE holds (
    id          TEXT PRIMARY KEY,
    product     TEXT NOT NULL,
    version     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    raised_by   TEXT NOT NULL,
    raised_at   TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP,
    resolved_by TEXT NOT NULL DEFAULT '',
    resolution  TEXT NOT NULL DEFAULT '',
    FOREIGN KEY (product, version) REFERENCES releases (product, version)
);
CREATE INDEX holds_release ON holds (product, version);

CREATE TABLE installations (
    product       TEXT NOT NULL,
    instance_id   TEXT NOT NULL,
    customer      TEXT NOT NULL,
    version       TEXT NOT NULL,
    health        TEXT NOT NULL,
    health_detail TEXT NOT NULL DEFAULT '',
    first_seen    TIMESTAMP NOT NULL,
    last_seen     TIMESTAMP NOT NULL,
    -- Scoped by customer: a check-in can only ever touch its own customer's rows.
    PRIMARY KEY (product, customer, instance_id)
);
CREATE INDEX installations_last_seen ON installations (last_seen);

-- Events installations reported. Committed before the check-in is answered.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    product      TEXT NOT NULL,
    instance_id  TEXT NOT NULL,
    customer     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    from_version TEXT NOT NULL DEFAULT '',
    to_version   TEXT NOT NULL,
    at           TIMESTAMP NOT NULL,
    detail       TEXT NOT NULL DEFAULT '',
    received_at  TIMESTAMP NOT NULL
);
CREATE INDEX events_release ON events (product, to_version, received_at);
CREATE INDEX events_received ON events (received_at);

-- Health reports of damage (corrupt, collation_changed), which count toward
-- auto-halt. Healthy reports only update installations.health.
CREATE TABLE health_reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    product     TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    version     TEXT NOT NULL,
    status      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    at          TIMESTAMP NOT NULL
);
CREATE INDEX health_reports_release ON health_reports (product, version, at);

-- API tokens; only the SHA-256 of the token is stored.
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('viewer', 'releaser', 'incident', 'admin')),
    hash         BLOB NOT NULL UNIQUE,
    created_at   TIMESTAMP NOT NULL,
    created_by   TEXT NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at   TIMESTAMP
);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     TIMESTAMP NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    -- Why, when the action takes a reason (resume, for one, has no other record of it).
    reason TEXT NOT NULL DEFAULT '',
    before TEXT,
    after  TEXT
);

-- ed25519 keys that sign check-in answers; the newest signs, all verify.
CREATE TABLE signing_keys (
    keyid       TEXT PRIMARY KEY,
    private_key BLOB NOT NULL,
    created_at  TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE audit_log;
DROP TABLE tokens;
DROP TABLE health_reports;
DROP TABLE events;
DROP TABLE installations;
DROP TABLE holds;
DROP TABLE gate_results;
DROP TABLE promotions;
DROP TABLE releases;
DROP TABLE enrollment_keys;
DROP TABLE customers;
DROP TABLE rings;
DROP TABLE products;
