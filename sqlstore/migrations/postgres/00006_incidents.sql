-- Incidents and the status page: components in two-level groups and their
-- status history, incidents with their timeline and releases, scheduled
-- maintenance, templates, the severity configuration, and the notifications
-- subscribers must get, written in the same transaction as each change.

-- +goose Up
CREATE TABLE status_groups (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    position    INTEGER NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE status_components (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    description           TEXT NOT NULL DEFAULT '',
    group_id              BIGINT REFERENCES status_groups (id),
    position              INTEGER NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('operational', 'degraded_performance', 'partial_outage', 'major_outage', 'under_maintenance')),
    only_show_if_degraded BOOLEAN NOT NULL DEFAULT FALSE,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);

-- Every status a component took, from its creation on: the page's daily
-- history is computed from it.
CREATE TABLE component_status_log (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    component_id BIGINT NOT NULL REFERENCES status_components (id),
    status       TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX component_status_log_at ON component_status_log (component_id, at);

CREATE TABLE incidents (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title         TEXT NOT NULL,
    impact        TEXT NOT NULL CHECK (impact IN ('none', 'minor', 'major', 'critical')),
    severity      TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('investigating', 'identified', 'monitoring', 'resolved', 'postmortem')),
    draft         BOOLEAN NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    published_at  TIMESTAMPTZ,
    monitoring_at TIMESTAMPTZ,
    resolved_at   TIMESTAMPTZ,
    postmortem    TEXT NOT NULL DEFAULT '',
    postmortem_at TIMESTAMPTZ,
    -- JSON array of the ids of the components any update changed.
    components    JSONB NOT NULL DEFAULT '[]',
    by_actor      TEXT NOT NULL
);
CREATE INDEX incidents_updated ON incidents (updated_at);
CREATE INDEX incidents_open ON incidents (status);

CREATE TABLE incident_updates (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    status      TEXT NOT NULL,
    body        TEXT NOT NULL,
    -- JSON array of incident.ComponentChange.
    components  JSONB NOT NULL,
    notify      BOOLEAN NOT NULL,
    by_actor    TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX incident_updates_incident ON incident_updates (incident_id);

-- The releases an incident concerns (product@version).
CREATE TABLE incident_releases (
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    product     TEXT NOT NULL,
    version     TEXT NOT NULL,
    PRIMARY KEY (incident_id, product, version),
    FOREIGN KEY (product, version) REFERENCES releases (product, version)
);
CREATE INDEX incident_releases_release ON incident_releases (product, version);

CREATE TABLE maintenances (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title           TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('scheduled', 'in_progress', 'verifying', 'completed', 'cancelled')),
    scheduled_for   TIMESTAMPTZ NOT NULL,
    scheduled_until TIMESTAMPTZ NOT NULL,
    -- JSON array of the ids of the components the work touches.
    components      JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ,
    completed_at    TIMESTAMPTZ,
    by_actor        TEXT NOT NULL
);
CREATE INDEX maintenances_status ON maintenances (status, scheduled_for);

CREATE TABLE maintenance_updates (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    maintenance_id BIGINT NOT NULL REFERENCES maintenances (id),
    status         TEXT NOT NULL,
    body           TEXT NOT NULL,
    components     JSONB NOT NULL,
    by_actor       TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL
);
CREATE INDEX maintenance_updates_maintenance ON maintenance_updates (maintenance_id);

CREATE TABLE incident_templates (
    name       TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    impact     TEXT NOT NULL DEFAULT '',
    severity   TEXT NOT NULL DEFAULT '',
    status     TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- The severity levels and policy in force (incident.Config as JSON); one
-- row, absent until first changed (the defaults apply).
CREATE TABLE incident_config (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    config     JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- What subscribers must be told (incident.Notification as JSON), written in
-- the transaction of the change; ids increase in commit order (writers
-- serialize on it), so a reader's cursor never skips one.
CREATE TABLE status_notifications (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE status_notifications;
DROP TABLE incident_config;
DROP TABLE incident_templates;
DROP TABLE maintenance_updates;
DROP TABLE maintenances;
DROP TABLE incident_releases;
DROP TABLE incident_updates;
DROP TABLE incidents;
DROP TABLE component_status_log;
DROP TABLE status_components;
DROP TABLE status_groups;
