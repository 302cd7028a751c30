-- bench/history.sh: the schema of the PostgreSQL (and, WITHOUT ROWID, the
-- SQLite) peer. One row a reading; district is series mod 10 (ten groups, like
-- the ten Jiaozuo districts; the peers do the same work, not the same grouping).
CREATE TABLE series (id integer PRIMARY KEY, entity text NOT NULL, district integer NOT NULL);
CREATE TABLE readings (
    series integer NOT NULL,
    ts bigint NOT NULL,            -- epoch milliseconds
    value double precision NOT NULL,
    PRIMARY KEY (series, ts)
);
