-- Raw readings indexed by gateway and time, not by point: a commit then
-- touches the index at its end (a few pages per gateway) instead of one
-- page per point it holds, which PostgreSQL writes whole to its WAL after
-- each checkpoint. A point's readings over a range are found by the same
-- index (gateway, then the time range, the point read from the index
-- itself). Measured with `riser-bench ingest`; see the README.
DROP INDEX readings_by_point;
CREATE INDEX readings_by_time ON readings (gateway, ts_ms, point);
