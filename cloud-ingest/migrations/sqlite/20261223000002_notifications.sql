-- The notification outbox (src/notify/outbox.rs). Hazard transitions are
-- committed with the hazard change itself; the planner turns each into one
-- row per recipient here and marks the transition planned, in one
-- transaction. A mark per transition, not a cursor: transitions of
-- concurrent transactions may commit out of id order.
-- Transitions from before this migration page no one.
ALTER TABLE hazard_transitions ADD COLUMN planned_ms INTEGER;
UPDATE hazard_transitions SET planned_ms = 0;
CREATE INDEX hazard_transitions_unplanned ON hazard_transitions (id) WHERE planned_ms IS NULL;

-- One message to one address about one transition: exactly one per
-- (transition, recipient), whatever crashes or how many nodes plan.
-- `recipient` is route::Recipient::key (role, party, address); `target`
-- the address as JSON (channel::Target). `state`: pending (to send at
-- next_ms), sent, failed (permanently, or out of attempts), suppressed
-- (flapping: reopened soon after it cleared).
CREATE TABLE notifications (
    id            INTEGER PRIMARY KEY,
    transition_id INTEGER NOT NULL,
    hazard_id     INTEGER NOT NULL,
    building_id   TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    escalation    INTEGER NOT NULL,
    recipient     TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    party         TEXT    NOT NULL,
    channel       TEXT    NOT NULL,
    target        TEXT    NOT NULL,
    lang          TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_ms    INTEGER NOT NULL,
    next_ms       INTEGER NOT NULL,
    sent_ms       INTEGER,
    last_error    TEXT,
    UNIQUE (transition_id, recipient)
);
CREATE INDEX notifications_due ON notifications (state, next_ms);
CREATE INDEX notifications_by_hazard ON notifications (hazard_id, id);
CREATE INDEX notifications_by_recipient ON notifications (recipient, created_ms);
