-- Teams and API keys (SHA-256 of the key only); jobs answered from cache are marked so
-- that they cost no quota. Teams that already own rows (a v3 server had one, "default") are
-- registered, so the first admin key made for them finds their models and jobs.
CREATE TABLE teams (
  name       TEXT PRIMARY KEY,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
INSERT INTO teams (name) SELECT team FROM models UNION SELECT team FROM jobs;
CREATE TABLE api_keys (
  id         TEXT    PRIMARY KEY,
  team       TEXT    NOT NULL REFERENCES teams (name),
  role       INTEGER NOT NULL CHECK (role IN (1, 2)),
  key_sha256 TEXT    NOT NULL UNIQUE CHECK (length(key_sha256) = 64),
  prefix     TEXT    NOT NULL,
  created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  revoked_at TEXT    NOT NULL DEFAULT ''
);
ALTER TABLE jobs ADD COLUMN from_cache INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_by_team_state ON jobs (team, state);

