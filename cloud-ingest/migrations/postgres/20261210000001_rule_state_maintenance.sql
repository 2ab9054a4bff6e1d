-- What the rules remember of each building between evaluations (JSON of
-- rules::RuleState), kept with its verdict so durations survive a restart
-- and every ingest node judges from the same state.
ALTER TABLE building_state ADD COLUMN rule_state TEXT;

-- Every verdict change, so history shows when a building was last healthy.
CREATE TABLE verdict_history (
    id          BIGSERIAL PRIMARY KEY,
    building_id TEXT    NOT NULL,
    at_ms       BIGINT NOT NULL,
    status      TEXT    NOT NULL,
    reasons     TEXT    NOT NULL
);
CREATE INDEX verdict_history_by_building ON verdict_history (building_id, at_ms);

-- Maintenance mode (维保模式) windows: the building is still judged and
-- shown, nobody is paged. Ended early by setting `ended_ms`.
CREATE TABLE maintenance (
    id          BIGSERIAL PRIMARY KEY,
    building_id TEXT    NOT NULL,
    starts_ms   BIGINT NOT NULL,
    until_ms    BIGINT NOT NULL,
    by_whom     TEXT    NOT NULL,
    note        TEXT    NOT NULL DEFAULT '',
    created_ms  BIGINT NOT NULL,
    ended_ms    BIGINT,
    ended_by    TEXT
);
CREATE INDEX maintenance_by_building ON maintenance (building_id, until_ms);
