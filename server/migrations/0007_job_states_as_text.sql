-- Job states and phases as words rather than the numbers of squeeze.v1.JobState and Phase, so the
-- database reads on its own and does not depend on the enums' numbering: SQLite cannot change a
-- column's type, so the table is rebuilt with its rows, and its indexes made again.
CREATE TABLE jobs_with_text_states (
  id          TEXT    PRIMARY KEY,
  team        TEXT    NOT NULL,
  model_id    TEXT    NOT NULL,
  cache_key   TEXT    NOT NULL,
  state       TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  phase       TEXT    NOT NULL CHECK (phase IN ('queued', 'analyzing', 'measuring sensitivity',
                                                 'building the option table', 'searching', 'verifying',
                                                 'done')),
  fraction    REAL    NOT NULL DEFAULT 0,
  error       TEXT    NOT NULL DEFAULT '',
  spec        BLOB    NOT NULL,
  result      BLOB    NOT NULL DEFAULT x'',
  created_at  TEXT    NOT NULL,
  started_at  TEXT    NOT NULL DEFAULT '',
  finished_at TEXT    NOT NULL DEFAULT '',
  from_cache  INTEGER NOT NULL DEFAULT 0,
  attempts    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO jobs_with_text_states (id, team, model_id, cache_key, state, phase, fraction, error, spec, result,
                                   created_at, started_at, finished_at, from_cache, attempts)
  SELECT id, team, model_id, cache_key,
         CASE state WHEN 1 THEN 'queued' WHEN 2 THEN 'running' WHEN 3 THEN 'succeeded' WHEN 4 THEN 'failed'
                    ELSE 'cancelled' END,
         CASE phase WHEN 2 THEN 'analyzing' WHEN 3 THEN 'measuring sensitivity' WHEN 4 THEN 'building the option table'
                    WHEN 5 THEN 'searching' WHEN 6 THEN 'verifying' WHEN 7 THEN 'done' ELSE 'queued' END,
         fraction, error, spec, result, created_at, started_at, finished_at, from_cache, attempts
  FROM jobs ORDER BY rowid;
DROP TABLE jobs;
ALTER TABLE jobs_with_text_states RENAME TO jobs;
CREATE INDEX jobs_by_team ON jobs (team, created_at);
CREATE INDEX jobs_by_key ON jobs (team, cache_key, state);
CREATE INDEX jobs_by_state ON jobs (state);
CREATE INDEX jobs_by_team_state ON jobs (team, state);
