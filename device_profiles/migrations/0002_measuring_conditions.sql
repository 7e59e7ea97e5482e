-- Profile schema version 1 -> 2: measuring conditions on devices; sample keys, medians,
-- percentiles, element counts and the non-layer kinds on samples (a table rebuild: SQLite cannot
-- change a CHECK); whole-model latencies. Version 1 samples had only a mean: it becomes their
-- median too. Frozen: the tables as version 2 defined them.
ALTER TABLE devices ADD COLUMN measure_tool TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN measure_mode TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN measure_started_at TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN measure_duration_s REAL NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN measure_threads INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN measure_warmup_runs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN measure_repeats INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN measure_cpu_governor TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN measure_cpu_frequency_khz INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN measure_cpu_max_frequency_khz INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN measure_runtime_version TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN measure_host TEXT NOT NULL DEFAULT '';
ALTER TABLE latency_samples RENAME TO latency_samples_v1;
DROP INDEX latency_samples_by_kind;

CREATE TABLE latency_samples (
  id                INTEGER PRIMARY KEY,
  device_id         TEXT    NOT NULL,
  device_version    INTEGER NOT NULL,
  sample_key        TEXT    NOT NULL CHECK (length(sample_key) > 0),
  op_kind           TEXT    NOT NULL CHECK (op_kind IN ('conv', 'depthwise_conv', 'conv_transpose', 'gemm',
                                                        'quantize_linear', 'dequantize_linear', 'elementwise')),
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

-- Measured whole-model latencies on a device version: squeeze-profile --model, or what users
-- report. The predictor corrects its sum over layers with the one for the same model (variant '').
CREATE TABLE model_latencies (
  device_id         TEXT    NOT NULL,
  device_version    INTEGER NOT NULL,
  latency_key       TEXT    NOT NULL CHECK (length(latency_key) > 0),
  model_sha256      TEXT    NOT NULL CHECK (length(model_sha256) = 64),
  model_name        TEXT    NOT NULL DEFAULT '',
  variant           TEXT    NOT NULL DEFAULT '',  -- '' = the model as uploaded
  latency_median_us REAL    NOT NULL CHECK (latency_median_us > 0),
  latency_p10_us    REAL    NOT NULL DEFAULT 0 CHECK (latency_p10_us >= 0),
  latency_p90_us    REAL    NOT NULL DEFAULT 0 CHECK (latency_p90_us >= 0),
  repeats           INTEGER NOT NULL CHECK (repeats >= 1),
  threads           INTEGER NOT NULL CHECK (threads >= 1),
  measured_at       TEXT    NOT NULL,
  source            TEXT    NOT NULL,
  PRIMARY KEY (device_id, device_version, latency_key),
  FOREIGN KEY (device_id, device_version) REFERENCES devices (id, version) ON DELETE CASCADE
);

INSERT INTO latency_samples (id, device_id, device_version, sample_key, op_kind, batch, in_channels,
  out_channels, height, width, kernel, stride, groups, gemm_m, gemm_k, gemm_n, elements, weight_bits,
  activation_bits, sparsity, sparsity_ratio, macs, weight_bytes, activation_bytes, latency_median_us,
  latency_mean_us, latency_stddev_us, latency_p10_us, latency_p90_us, repeats, threads,
  runtime_version, measured_at, source, provenance)
SELECT id, device_id, device_version, 'sample ' || id, op_kind, batch, in_channels, out_channels,
  height, width, kernel, stride, groups, gemm_m, gemm_k, gemm_n, 0, weight_bits, activation_bits,
  sparsity, sparsity_ratio, macs, weight_bytes, activation_bytes, latency_mean_us, latency_mean_us,
  latency_stddev_us, 0, 0, repeats, threads, runtime_version, measured_at, source, provenance
FROM latency_samples_v1;
DROP TABLE latency_samples_v1;
PRAGMA user_version = 2;
