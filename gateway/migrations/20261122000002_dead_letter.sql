-- Messages the broker can never take (larger than the packet limit): kept
-- on disk for a person to look at, out of the sending queue.
CREATE TABLE dead_letter (
    id         INTEGER PRIMARY KEY,
    stream     TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    payload    BLOB    NOT NULL,
    reason     TEXT    NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (unixepoch())
);
