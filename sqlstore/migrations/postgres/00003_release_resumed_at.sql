-- Auto-halt may pause a release again after a person resumed it, on evidence
-- received after the resume only (00001's auto_halted_at alone made it act
-- at most once per release).

-- +goose Up
ALTER TABLE releases ADD COLUMN resumed_at TIMESTAMPTZ;

-- +goose Down
ALTER TABLE releases DROP COLUMN resumed_at;
