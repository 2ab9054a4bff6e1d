-- Every (gateway, stream, seq) accepted once; the duplicate filter.
CREATE TABLE received (
    gateway     TEXT    NOT NULL,
    stream      TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (gateway, stream, seq)
) WITHOUT ROWID;

-- Every reading, as history.
CREATE TABLE readings (
    id        INTEGER PRIMARY KEY,
    gateway   TEXT    NOT NULL,
    point     TEXT    NOT NULL,
    ts_ms     INTEGER NOT NULL,
    value     REAL,
    unit      TEXT,
    quality   TEXT    NOT NULL,
    exception INTEGER,
    seq       INTEGER NOT NULL
);
CREATE INDEX readings_by_point ON readings (gateway, point, ts_ms);

-- The newest reading of each point (by reading time, not arrival).
CREATE TABLE point_latest (
    gateway   TEXT    NOT NULL,
    point     TEXT    NOT NULL,
    ts_ms     INTEGER NOT NULL,
    value     REAL,
    unit      TEXT,
    quality   TEXT    NOT NULL,
    exception INTEGER,
    PRIMARY KEY (gateway, point)
) WITHOUT ROWID;

CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    gateway TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    point   TEXT    NOT NULL,
    ts_ms   INTEGER NOT NULL,
    value   REAL,
    quality TEXT    NOT NULL
);

CREATE TABLE gateways (
    id           TEXT PRIMARY KEY,
    online       INTEGER NOT NULL,
    status_ms    INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);

-- The current verdict of each building.
CREATE TABLE building_state (
    building_id TEXT PRIMARY KEY,
    status      TEXT    NOT NULL,
    reasons     TEXT    NOT NULL,
    updated_ms  INTEGER NOT NULL
);
