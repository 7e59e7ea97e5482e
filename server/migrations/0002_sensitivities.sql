-- Measured layer sensitivities, cached per model bytes, calibration set and options.
CREATE TABLE sensitivities (
  model_sha256     TEXT NOT NULL,
  calibration_hash TEXT NOT NULL,
  options_key      TEXT NOT NULL,
  report           BLOB NOT NULL,
  created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  PRIMARY KEY (model_sha256, calibration_hash, options_key)
);

