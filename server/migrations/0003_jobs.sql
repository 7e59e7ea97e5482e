-- Search jobs: spec, state, progress and result.
CREATE TABLE jobs (
  id          TEXT    PRIMARY KEY,
  team        TEXT    NOT NULL,
  model_id    TEXT    NOT NULL,
  cache_key   TEXT    NOT NULL,
  state       INTEGER NOT NULL,
  phase       INTEGER NOT NULL,
  fraction    REAL    NOT NULL DEFAULT 0,
  error       TEXT    NOT NULL DEFAULT '',
  spec        BLOB    NOT NULL,
  result      BLOB    NOT NULL DEFAULT x'',
  created_at  TEXT    NOT NULL,
  started_at  TEXT    NOT NULL DEFAULT '',
  finished_at TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX jobs_by_team ON jobs (team, created_at);
CREATE INDEX jobs_by_key ON jobs (team, cache_key, state);
CREATE INDEX jobs_by_state ON jobs (state);

