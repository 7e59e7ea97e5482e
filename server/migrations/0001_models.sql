-- Models: each team's uploads, their analysis, and the blob (by SHA-256) that holds the bytes.
CREATE TABLE models (
  id           TEXT    PRIMARY KEY,
  team         TEXT    NOT NULL,
  name         TEXT    NOT NULL,
  sha256       TEXT    NOT NULL CHECK (length(sha256) = 64),
  size_bytes   INTEGER NOT NULL CHECK (size_bytes > 0),
  input_shapes TEXT    NOT NULL,
  analysis     BLOB    NOT NULL,
  created_at   TEXT    NOT NULL
);
CREATE INDEX models_by_team ON models (team, created_at);
CREATE INDEX models_by_blob ON models (sha256);

