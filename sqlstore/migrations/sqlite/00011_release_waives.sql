-- The preflight findings a release waives (release.Waivers): a JSON array,
-- empty for most releases.

-- +goose Up
ALTER TABLE releases ADD COLUMN waives TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE releases DROP COLUMN waives;
