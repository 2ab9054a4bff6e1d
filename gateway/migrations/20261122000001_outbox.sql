-- Messages written before sending, deleted after PUBACK.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    priority   INTEGER NOT NULL,
    stream     TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    payload    BLOB    NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    UNIQUE (stream, seq)
);
CREATE INDEX outbox_send_order ON outbox (priority, id);

-- Last sequence number given out per stream; never goes back.
CREATE TABLE sequence (
    stream TEXT PRIMARY KEY,
    last   INTEGER NOT NULL
);
