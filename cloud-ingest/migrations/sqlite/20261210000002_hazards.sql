-- Hazard items (隐患): opened by the rules, acknowledged, resolved when the
-- condition clears, closed (销号) by a person; deadlines (限期整改) and
-- escalation (挂牌督办). See src/hazards/mod.rs for the lifecycle.
-- `point` is '' for a condition of the whole building (gateway offline).
CREATE TABLE hazards (
    id              INTEGER PRIMARY KEY,
    building_id     TEXT    NOT NULL,
    code            TEXT    NOT NULL,
    point           TEXT    NOT NULL DEFAULT '',
    severity        TEXT    NOT NULL,
    clause          TEXT,
    quality         TEXT,
    state           TEXT    NOT NULL,
    value           REAL,
    required        REAL,
    opened_ms       INTEGER NOT NULL,
    recorded_ms     INTEGER NOT NULL,
    ack_due_ms      INTEGER NOT NULL,
    deadline_ms     INTEGER NOT NULL,
    acknowledged_ms INTEGER,
    acknowledged_by TEXT,
    resolved_ms     INTEGER,
    closed_ms       INTEGER,
    closed_by       TEXT,
    closed_remark   TEXT,
    escalation      INTEGER NOT NULL DEFAULT 0,
    escalated_ms    INTEGER,
    last_seen_ms    INTEGER NOT NULL,
    reopened        INTEGER NOT NULL DEFAULT 0
);
-- At most one item of a (building, code, point) that is not closed: the one
-- the rules update.
CREATE UNIQUE INDEX hazards_open_item ON hazards (building_id, code, point) WHERE state <> 'closed';
CREATE INDEX hazards_by_recorded ON hazards (recorded_ms);
CREATE INDEX hazards_by_state ON hazards (state, deadline_ms);

-- Every transition of an item, with who and when.
CREATE TABLE hazard_transitions (
    id        INTEGER PRIMARY KEY,
    hazard_id INTEGER NOT NULL REFERENCES hazards (id),
    at_ms     INTEGER NOT NULL,
    action    TEXT    NOT NULL,
    by_whom   TEXT    NOT NULL,
    note      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX hazard_transitions_by_hazard ON hazard_transitions (hazard_id, id);
