-- Exports of search candidates, cached per (model bytes, plan, calibration, options).
CREATE TABLE exports (
  team        TEXT    NOT NULL,
  job_id      TEXT    NOT NULL,
  device_id   TEXT    NOT NULL,
  candidate   INTEGER NOT NULL,
  cache_key   TEXT    NOT NULL,
  blob_sha256 TEXT    NOT NULL CHECK (length(blob_sha256) = 64),
  report      BLOB    NOT NULL,
  created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  PRIMARY KEY (team, job_id, device_id, candidate)
);
CREATE INDEX exports_by_key ON exports (team, cache_key, created_at);

