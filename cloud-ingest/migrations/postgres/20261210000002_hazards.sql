-- The same tables as migrations/sqlite/20261210000002_hazards.sql.
-- Hazard items (隐患): opened by the rules, acknowledged, resolved when the
-- condition clears, closed (销号) by a person; deadlines (限期整改) and
-- escalation (挂牌督办). See src/hazards/mod.rs for the lifecycle.
-- `point` is '' for a condition of the whole building (gateway offline).
CREATE TABLE hazards (
    id              BIGSERIAL PRIMARY KEY,
    building_id     TEXT    NOT NULL,
    code            TEXT    NOT NULL,
    point           TEXT    NOT NULL DEFAULT '',
    severity        TEXT    NOT NULL,
    clause          TEXT,
    quality         TEXT,
    state           TEXT    NOT NULL,
    value           DOUBLE PRECISION,
    required        DOUBLE PRECISION,
    opened_ms       BIGINT NOT NULL,
    recorded_ms     BIGINT NOT NULL,
    ack_due_ms      BIGINT NOT NULL,
    deadline_ms     BIGINT NOT NULL,
    acknowledged_ms BIGINT,
    acknowledged_by TEXT,
    resolved_ms     BIGINT,
    closed_ms       BIGINT,
    closed_by       TEXT,
    closed_remark   TEXT,
    escalation      BIGINT NOT NULL DEFAULT 0,
    escalated_ms    BIGINT,
    last_seen_ms    BIGINT NOT NULL,
    reopened        BIGINT NOT NULL DEFAULT 0
);
-- At most one item of a (building, code, point) that is not closed: the one
-- the rules update.
CREATE UNIQUE INDEX hazards_open_item ON hazards (building_id, code, point) WHERE state <> 'closed';
CREATE INDEX hazards_by_recorded ON hazards (recorded_ms);
CREATE INDEX hazards_by_state ON hazards (state, deadline_ms);

-- Every transition of an item, with who and when.
CREATE TABLE hazard_transitions (
    id        BIGSERIAL PRIMARY KEY,
    hazard_id BIGINT NOT NULL REFERENCES hazards (id),
    at_ms     BIGINT NOT NULL,
    action    TEXT    NOT NULL,
    by_whom   TEXT    NOT NULL,
    note      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX hazard_transitions_by_hazard ON hazard_transitions (hazard_id, id);
