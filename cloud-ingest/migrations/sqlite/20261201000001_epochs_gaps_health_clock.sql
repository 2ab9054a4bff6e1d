-- Sequence numbers count per (gateway, stream, epoch): a gateway whose outbox
-- is created afresh starts a new epoch at seq 1. What was stored before this
-- migration is epoch 0, which is what payloads without an epoch mean.
CREATE TABLE received_by_epoch (
    gateway     TEXT    NOT NULL,
    stream      TEXT    NOT NULL,
    epoch       INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (gateway, stream, epoch, seq)
) WITHOUT ROWID;
INSERT INTO received_by_epoch (gateway, stream, epoch, seq, received_ms)
    SELECT gateway, stream, 0, seq, received_ms FROM received;
DROP TABLE received;
ALTER TABLE received_by_epoch RENAME TO received;

-- Progress of each sequence space, updated in the transaction that stores a
-- message: `highest - received` messages are missing. After a reconnect the
-- newest arrive first and the backlog behind them, so a gap may still fill.
CREATE TABLE sequences (
    gateway  TEXT    NOT NULL,
    stream   TEXT    NOT NULL,
    epoch    INTEGER NOT NULL,
    highest  INTEGER NOT NULL,
    received INTEGER NOT NULL,
    -- Arrival of its first and of its latest message.
    first_ms INTEGER NOT NULL,
    last_ms  INTEGER NOT NULL,
    PRIMARY KEY (gateway, stream, epoch)
) WITHOUT ROWID;
INSERT INTO sequences (gateway, stream, epoch, highest, received, first_ms, last_ms)
    SELECT gateway, stream, epoch, MAX(seq), COUNT(*), MIN(received_ms), MAX(received_ms)
    FROM received GROUP BY gateway, stream, epoch;

-- The gateway's latest health report (JSON, as in the contract's `Health`)
-- and software version; a status without them (the last-will) keeps them.
ALTER TABLE gateways ADD COLUMN software TEXT;
ALTER TABLE gateways ADD COLUMN health TEXT;
ALTER TABLE gateways ADD COLUMN health_ms INTEGER;

-- `ts_ms` is the time a reading or event is judged at. When the gateway's
-- clock was not trusted it is the arrival time, and `gateway_ts_ms` keeps
-- what the gateway said. `clock` is the gateway's flag, `replay` whether it
-- came from the backlog after an outage.
ALTER TABLE readings ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE readings ADD COLUMN replay INTEGER NOT NULL DEFAULT 0;
ALTER TABLE readings ADD COLUMN clock TEXT;
ALTER TABLE readings ADD COLUMN gateway_ts_ms INTEGER;

ALTER TABLE events ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN replay INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN clock TEXT;
ALTER TABLE events ADD COLUMN gateway_ts_ms INTEGER;

ALTER TABLE point_latest ADD COLUMN clock TEXT;
ALTER TABLE point_latest ADD COLUMN gateway_ts_ms INTEGER;
