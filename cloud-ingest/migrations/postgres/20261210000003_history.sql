-- Per-minute history of every point, kept ([history] minute_days) long
-- after its raw readings are pruned (raw_days): charts longer than a day
-- read it. `minute_ms` is the start of the minute of the readings' placed
-- time. `n`, `min`, `max` and `sum` cover the readings with a value and
-- quality `good`; `bad` counts the others (no value, or another quality),
-- so a chart can tell a faulty sensor from silence. `min` and `max` are
-- NULL while `n` is 0. Added to in the transaction that stores the
-- readings (store::history).
CREATE TABLE readings_minute (
    gateway   TEXT             NOT NULL,
    point     TEXT             NOT NULL,
    minute_ms BIGINT           NOT NULL,
    n         BIGINT           NOT NULL,
    bad       BIGINT           NOT NULL,
    min       DOUBLE PRECISION,
    max       DOUBLE PRECISION,
    sum       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (gateway, point, minute_ms)
);

-- The readings stored before this migration, so that pruning them loses
-- no history.
INSERT INTO readings_minute (gateway, point, minute_ms, n, bad, min, max, sum)
SELECT gateway, point, ts_ms - ((ts_ms % 60000 + 60000) % 60000),
       SUM(CASE WHEN quality = 'good' AND value IS NOT NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN quality = 'good' AND value IS NOT NULL THEN 0 ELSE 1 END),
       MIN(CASE WHEN quality = 'good' THEN value END),
       MAX(CASE WHEN quality = 'good' THEN value END),
       COALESCE(SUM(CASE WHEN quality = 'good' THEN value END), 0)
FROM readings
GROUP BY 1, 2, 3;

-- The dedupe table is pruned by age ([history] received_days). One more
-- index entry per message (not per reading).
CREATE INDEX received_by_time ON received (received_ms);
