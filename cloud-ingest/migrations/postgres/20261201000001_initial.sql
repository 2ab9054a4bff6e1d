-- The PostgreSQL schema: the same tables and columns as the SQLite
-- migrations end with (migrations/sqlite/), in one step. Integers are
-- BIGINT throughout (times in Unix ms; flags 0/1), so both back ends read
-- the same through sqlx's Any driver.

-- Every (gateway, stream, epoch, seq) accepted once; the duplicate filter.
CREATE TABLE received (
    gateway     TEXT   NOT NULL,
    stream      TEXT   NOT NULL,
    epoch       BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (gateway, stream, epoch, seq)
);

-- Progress of each sequence space: `highest - received` are missing.
CREATE TABLE sequences (
    gateway  TEXT   NOT NULL,
    stream   TEXT   NOT NULL,
    epoch    BIGINT NOT NULL,
    highest  BIGINT NOT NULL,
    received BIGINT NOT NULL,
    first_ms BIGINT NOT NULL,
    last_ms  BIGINT NOT NULL,
    PRIMARY KEY (gateway, stream, epoch)
);

-- Every reading, as history.
CREATE TABLE readings (
    id            BIGSERIAL PRIMARY KEY,
    gateway       TEXT   NOT NULL,
    point         TEXT   NOT NULL,
    ts_ms         BIGINT NOT NULL,
    value         DOUBLE PRECISION,
    unit          TEXT,
    quality       TEXT   NOT NULL,
    exception     BIGINT,
    seq           BIGINT NOT NULL,
    epoch         BIGINT NOT NULL DEFAULT 0,
    replay        BIGINT NOT NULL DEFAULT 0,
    clock         TEXT,
    gateway_ts_ms BIGINT
);
CREATE INDEX readings_by_point ON readings (gateway, point, ts_ms);

-- The newest reading of each point (by reading time, not arrival).
CREATE TABLE point_latest (
    gateway       TEXT   NOT NULL,
    point         TEXT   NOT NULL,
    ts_ms         BIGINT NOT NULL,
    value         DOUBLE PRECISION,
    unit          TEXT,
    quality       TEXT   NOT NULL,
    exception     BIGINT,
    clock         TEXT,
    gateway_ts_ms BIGINT,
    PRIMARY KEY (gateway, point)
);

CREATE TABLE events (
    id            BIGSERIAL PRIMARY KEY,
    gateway       TEXT   NOT NULL,
    seq           BIGINT NOT NULL,
    kind          TEXT   NOT NULL,
    point         TEXT   NOT NULL,
    ts_ms         BIGINT NOT NULL,
    value         DOUBLE PRECISION,
    quality       TEXT   NOT NULL,
    epoch         BIGINT NOT NULL DEFAULT 0,
    replay        BIGINT NOT NULL DEFAULT 0,
    clock         TEXT,
    gateway_ts_ms BIGINT
);

CREATE TABLE gateways (
    id           TEXT PRIMARY KEY,
    online       BIGINT NOT NULL,
    status_ms    BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    software     TEXT,
    health       TEXT,
    health_ms    BIGINT
);

-- The current verdict of each building.
CREATE TABLE building_state (
    building_id TEXT PRIMARY KEY,
    status      TEXT   NOT NULL,
    reasons     TEXT   NOT NULL,
    updated_ms  BIGINT NOT NULL
);
