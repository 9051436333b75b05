-- Notifications (the incident webhook) written in the same transaction as
-- the change they announce, and delivered from here with retries, so a crash
-- between the change and its delivery loses nothing.

-- +goose Up
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    -- pending until delivered, or failed after the last allowed attempt.
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- When the next attempt may start; a claim moves it past the attempt's
    -- timeout, so another server does not deliver the same row meanwhile.
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    done_at         TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- +goose Down
DROP TABLE outbox;
