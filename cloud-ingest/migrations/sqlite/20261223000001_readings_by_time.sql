-- Raw readings indexed by gateway and time, not by point: a commit then
-- touches the index at its end (a few pages per gateway) instead of one
-- page per point it holds. With the index by point, a commit of 20 000
-- readings of 10 000 points wrote ~10 000 index pages to the
-- write-ahead log and the ingest slowed as the table grew (measured with
-- `riser-bench ingest`). A point's readings over a range are found by the
-- same index (gateway, then the time range, the point read from the
-- index itself).
DROP INDEX readings_by_point;
CREATE INDEX readings_by_time ON readings (gateway, ts_ms, point);
