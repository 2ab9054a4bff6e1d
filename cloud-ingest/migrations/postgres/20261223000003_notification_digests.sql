-- The same tables as migrations/sqlite/20261223000003_notification_digests.sql.
-- Rate limiting alerts per recipient (src/notify/outbox): past
-- `notify.rate_limit.messages` in `window_minutes`, a recipient's further
-- notifications are stored `digested` under one digest, sent as one
-- message listing them (a district-wide outage sends a digest, not a
-- thousand messages). A digest gathers until it is claimed for sending
-- (`attempts` > 0); the next one gathers afresh. At most one gathering
-- digest per recipient.
ALTER TABLE notifications ADD COLUMN digest_id BIGINT;
CREATE INDEX notifications_by_digest ON notifications (digest_id, id) WHERE digest_id IS NOT NULL;

CREATE TABLE notification_digests (
    id          BIGSERIAL PRIMARY KEY,
    recipient   TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    party       TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    lang        TEXT    NOT NULL,
    items       BIGINT  NOT NULL DEFAULT 0,
    state       TEXT    NOT NULL,
    attempts    BIGINT  NOT NULL DEFAULT 0,
    created_ms  BIGINT  NOT NULL,
    next_ms     BIGINT  NOT NULL,
    sent_ms     BIGINT,
    last_error  TEXT
);
CREATE UNIQUE INDEX notification_digests_gathering ON notification_digests (recipient)
    WHERE state = 'pending' AND attempts = 0;
CREATE INDEX notification_digests_due ON notification_digests (state, next_ms);
CREATE INDEX notification_digests_by_recipient ON notification_digests (recipient, created_ms);
