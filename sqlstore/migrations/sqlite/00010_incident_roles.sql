-- Who holds which role in an incident's response (commander,
-- communications, technical, release_manager, scribe): one row per role
-- held, replaced at a hand-over. The audit log keeps who held it before.
-- Staff-only: nothing public reads it.

-- +goose Up
CREATE TABLE incident_roles (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    role        TEXT NOT NULL,
    who         TEXT NOT NULL,
    since       TIMESTAMP NOT NULL,
    by_actor    TEXT NOT NULL,
    PRIMARY KEY (incident_id, role)
);

-- +goose Down
DROP TABLE incident_roles;
