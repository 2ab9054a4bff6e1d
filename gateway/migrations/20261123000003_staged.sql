-- Readings written but not yet sealed into a message (one row per group
-- commit): the backlog. Sealing, when the uplink has room, numbers them
-- into messages of the `outbox` table and deletes them here. Thinning works
-- on these rows only; events go straight to `outbox` and are never thinned.
CREATE TABLE staged (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Time of the oldest reading, Unix ms (boot-clock ms when held).
    first_ms  INTEGER NOT NULL,
    readings  INTEGER NOT NULL,
    -- Taken before the clock was trusted: times are ms of the boot clock of
    -- boot `boot_id`, restamped once the clock is trusted.
    held      INTEGER NOT NULL DEFAULT 0,
    boot_id   TEXT,
    -- Already thinned to one reading per point per interval.
    thinned   INTEGER NOT NULL DEFAULT 0,
    -- A compact telemetry payload (contract form, seq 0).
    body      BLOB    NOT NULL
);

-- Named counters that outlive restarts: the sequence epoch, readings
-- thinned and dropped.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

ALTER TABLE outbox ADD COLUMN readings INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN first_ms INTEGER;
