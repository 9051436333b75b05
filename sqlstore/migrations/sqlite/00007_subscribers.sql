-- Status page subscribers and the deliveries of what they must be told.
-- A notification is fanned out once into one message and one delivery per
-- matching subscriber, in one transaction that also advances the cursor
-- over status_notifications, so a notification is fanned out exactly once
-- and every delivery is retried until delivered or dead, across restarts.

-- +goose Up
CREATE TABLE subscribers (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('webhook', 'email')),
    -- The webhook URL or the email address.
    target       TEXT NOT NULL,
    -- Webhook: the Standard Webhooks signing secret (whsec_...). Kept, not
    -- hashed: every delivery is signed with it.
    secret       TEXT NOT NULL DEFAULT '',
    -- Email: the capability in the confirm and unsubscribe links. Kept, not
    -- hashed: every email carries the unsubscribe link. It only acts on
    -- this one subscription.
    token        TEXT NOT NULL DEFAULT '',
    -- JSON array of component ids; empty means every notification.
    components   TEXT NOT NULL DEFAULT '[]',
    created_at   TIMESTAMP NOT NULL,
    created_by   TEXT NOT NULL,
    -- NULL until an email subscriber follows the opt-in link; webhooks an
    -- operator creates are confirmed at creation.
    confirmed_at TIMESTAMP
);
CREATE UNIQUE INDEX subscribers_token ON subscribers (token) WHERE token <> '';
CREATE UNIQUE INDEX subscribers_target ON subscribers (kind, target);

-- One message per notification (or per opt-in request): what is sent.
CREATE TABLE notify_messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Stable id: the Standard Webhooks webhook-id and the email Message-ID,
    -- the same on every attempt, so receivers can drop duplicates.
    event_id   TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    -- The Statuspage-shaped webhook payload (JSON).
    body       TEXT NOT NULL,
    -- The email's plain text (links to the page included; the sender adds
    -- the subscriber's own confirm or unsubscribe link).
    text       TEXT NOT NULL,
    -- The component ids the message concerns (JSON array; empty: all).
    components TEXT NOT NULL DEFAULT '[]',
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id      BIGINT NOT NULL REFERENCES notify_messages (id) ON DELETE CASCADE,
    subscriber_id   TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    -- pending until delivered, or dead after the last allowed attempt
    -- (an operator may replay it: pending again).
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- When the next attempt may start; a claim moves it past the attempt's
    -- timeout, so another server does not send the same row meanwhile.
    next_attempt_at TIMESTAMP NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL,
    done_at         TIMESTAMP,
    UNIQUE (message_id, subscriber_id)
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);

-- How far fan-out has read status_notifications.
CREATE TABLE notify_cursor (
    name    TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL
);

-- +goose Down
DROP TABLE notify_cursor;
DROP TABLE deliveries;
DROP TABLE notify_messages;
DROP TABLE subscribers;
