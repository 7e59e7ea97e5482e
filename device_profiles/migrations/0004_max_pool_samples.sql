-- Profile schema version 3 -> 4: max_pool samples (uint8 MaxPool in NCHW) on latency_samples, a
-- table rebuild (SQLite cannot change a CHECK). Frozen: the table as version 4 defines it.
ALTER TABLE latency_samples RENAME TO latency_samples_v3;
DROP INDEX latency_samples_by_kind;
CREATE TABLE latency_samples (
  id                INTEGER PRIMARY KEY,
  device_id         TEXT    NOT NULL,
  device_version    INTEGER NOT NULL,
  sample_key        TEXT    NOT NULL CHECK (length(sample_key) > 0),
  op_kind           TEXT    NOT NULL CHECK (op_kind IN ('conv', 'depthwise_conv', 'conv_transpose', 'gemm',
                                                        'quantize_linear', 'dequantize_linear', 'elementwise',
                                                        'transpose', 'max_pool')),
  batch             INTEGER NOT NULL DEFAULT 1,
  in_channels       INTEGER NOT NULL DEFAULT 0,
  out_channels      INTEGER NOT NULL DEFAULT 0,
  height            INTEGER NOT NULL DEFAULT 0,
  width             INTEGER NOT NULL DEFAULT 0,
  kernel            INTEGER NOT NULL DEFAULT 0,
  stride            INTEGER NOT NULL DEFAULT 1,
  groups            INTEGER NOT NULL DEFAULT 1,
  gemm_m            INTEGER NOT NULL DEFAULT 0,
  gemm_k            INTEGER NOT NULL DEFAULT 0,
  gemm_n            INTEGER NOT NULL DEFAULT 0,
  elements          INTEGER NOT NULL DEFAULT 0 CHECK (elements >= 0),
  weight_bits       INTEGER NOT NULL,
  activation_bits   INTEGER NOT NULL,
  sparsity          TEXT    NOT NULL CHECK (sparsity IN ('dense', 'unstructured', '2:4')),
  sparsity_ratio    REAL    NOT NULL DEFAULT 0 CHECK (sparsity_ratio >= 0 AND sparsity_ratio < 1),
  macs              INTEGER NOT NULL CHECK (macs >= 0),  -- 0 for the non-layer kinds
  weight_bytes      INTEGER NOT NULL CHECK (weight_bytes >= 0),
  activation_bytes  INTEGER NOT NULL CHECK (activation_bytes >= 0),
  latency_median_us REAL    NOT NULL CHECK (latency_median_us > 0),  -- what the predictor reads
  latency_mean_us   REAL    NOT NULL CHECK (latency_mean_us > 0),
  latency_stddev_us REAL    NOT NULL CHECK (latency_stddev_us >= 0),
  latency_p10_us    REAL    NOT NULL DEFAULT 0 CHECK (latency_p10_us >= 0),
  latency_p90_us    REAL    NOT NULL DEFAULT 0 CHECK (latency_p90_us >= 0),
  repeats           INTEGER NOT NULL CHECK (repeats >= 1),
  threads           INTEGER NOT NULL CHECK (threads >= 1),
  runtime_version   TEXT    NOT NULL,
  measured_at       TEXT    NOT NULL,
  source            TEXT    NOT NULL,
  provenance        TEXT    NOT NULL CHECK (provenance IN ('spec', 'measured')),
  UNIQUE (device_id, device_version, sample_key),
  FOREIGN KEY (device_id, device_version) REFERENCES devices (id, version) ON DELETE CASCADE
);
CREATE INDEX latency_samples_by_kind
  ON latency_samples (device_id, device_version, op_kind, weight_bits, activation_bits, sparsity);
INSERT INTO latency_samples SELECT * FROM latency_samples_v3;
DROP TABLE latency_samples_v3;
PRAGMA user_version = 4;
