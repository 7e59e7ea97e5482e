-- Squeeze device-profile database (profiles.db), schema version 5 (PRAGMA user_version).
-- Older databases are migrated in place on open by the frozen, numbered files in migrations/
-- (NNNN_name.sql brings user_version to NNNN; a schema change here needs one more there).
--
-- A device profile says what a device runs natively and how fast, so the cost model can predict a
-- layer's latency under every compression option. Every row says where its figures came from:
-- `source` cites documents or the measurement, `derivation` shows how a derived figure was
-- computed, `provenance` is 'spec' (public specifications) or 'measured' (squeeze-profile).
--
-- A device has versions: uploading a new profile for an id adds a version and keeps the older
-- versions' rows, so jobs that used them stay explainable. The newest version is the device.
--
-- Units are in the column names: _bytes, _bytes_per_s, _ops_per_s (1 MAC = 2 ops), _us, _s.

PRAGMA foreign_keys = ON;

CREATE TABLE devices (
  id                           TEXT    NOT NULL CHECK (length(id) BETWEEN 1 AND 64 AND id NOT GLOB '*[^a-z0-9-]*'),
  version                      INTEGER NOT NULL CHECK (version >= 1),
  name                         TEXT    NOT NULL,
  vendor                       TEXT    NOT NULL,
  soc                          TEXT    NOT NULL,
  os                           TEXT    NOT NULL,
  cpu                          TEXT    NOT NULL,  -- core clusters and clocks, as the vendor states them
  cpu_cores                    INTEGER NOT NULL CHECK (cpu_cores >= 1),
  simd                         TEXT    NOT NULL,  -- comma-separated ISA features, e.g. 'neon,fp16,dotprod,i8mm'
  accelerator                  TEXT    NOT NULL DEFAULT '',  -- the NPU/GPU the runtime targets; '' = CPU
  ram_bytes                    INTEGER NOT NULL CHECK (ram_bytes > 0),
  app_memory_budget_bytes      INTEGER NOT NULL CHECK (app_memory_budget_bytes > 0),
  memory_bandwidth_bytes_per_s REAL    NOT NULL CHECK (memory_bandwidth_bytes_per_s > 0),
  runtime                      TEXT    NOT NULL,  -- e.g. 'onnxruntime-cpu', 'onnxruntime-qnn', 'tensorrt'
  runtime_version              TEXT    NOT NULL,
  threads                      INTEGER NOT NULL CHECK (threads >= 1),
  op_overhead_us               REAL    NOT NULL CHECK (op_overhead_us >= 0),  -- fixed cost per op
  source                       TEXT    NOT NULL,
  derivation                   TEXT    NOT NULL,
  provenance                   TEXT    NOT NULL CHECK (provenance IN ('spec', 'measured')),
  created_at                   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  -- How a measured version was measured (squeeze-profile's conditions); '' / 0 when not measured.
  measure_tool                 TEXT    NOT NULL DEFAULT '',
  measure_mode                 TEXT    NOT NULL DEFAULT '',
  measure_started_at           TEXT    NOT NULL DEFAULT '',
  measure_duration_s           REAL    NOT NULL DEFAULT 0,
  measure_threads              INTEGER NOT NULL DEFAULT 0,
  measure_warmup_runs          INTEGER NOT NULL DEFAULT 0,
  measure_repeats              INTEGER NOT NULL DEFAULT 0,
  measure_cpu_governor         TEXT    NOT NULL DEFAULT '',
  measure_cpu_frequency_khz    INTEGER NOT NULL DEFAULT 0,
  measure_cpu_max_frequency_khz INTEGER NOT NULL DEFAULT 0,
  measure_runtime_version      TEXT    NOT NULL DEFAULT '',
  measure_host                 TEXT    NOT NULL DEFAULT '',
  PRIMARY KEY (id, version)
);

-- What the device runs natively, per op kind x precision x sparsity pattern, with its peak rate.
-- A combination with no row runs emulated: at the cost of the cheapest native row of at least its
-- precision (e.g. int4 weights unpacked to int8), and sparsity with no sparse kernel runs dense.
-- op_kind '*' is the default for every kind without a row of its own.
-- Output-channel pruning needs no row: a pruned layer is a smaller dense layer.
CREATE TABLE capabilities (
  device_id         TEXT    NOT NULL,
  device_version    INTEGER NOT NULL,
  op_kind           TEXT    NOT NULL CHECK (op_kind IN ('*', 'conv', 'depthwise_conv', 'conv_transpose', 'gemm')),
  weight_bits       INTEGER NOT NULL CHECK (weight_bits IN (2, 3, 4, 5, 6, 8, 16, 32)),
  activation_bits   INTEGER NOT NULL CHECK (activation_bits IN (8, 16, 32)),
  sparsity          TEXT    NOT NULL CHECK (sparsity IN ('dense', 'unstructured', '2:4')),
  native            INTEGER NOT NULL CHECK (native IN (0, 1)),
  peak_ops_per_s    REAL    NOT NULL CHECK (peak_ops_per_s > 0),
  efficiency        REAL    NOT NULL CHECK (efficiency > 0 AND efficiency <= 1),  -- share of peak kernels reach
  source            TEXT    NOT NULL,
  derivation        TEXT    NOT NULL,
  provenance        TEXT    NOT NULL CHECK (provenance IN ('spec', 'measured')),
  PRIMARY KEY (device_id, device_version, op_kind, weight_bits, activation_bits, sparsity),
  FOREIGN KEY (device_id, device_version) REFERENCES devices (id, version) ON DELETE CASCADE
);

-- Measured single-op latencies (squeeze-profile). Conv shapes use batch..groups, gemm shapes
-- m/k/n, the non-layer kinds (QuantizeLinear, DequantizeLinear, elementwise ops) `elements`.
-- sample_key is the profile file's sample id: unique within a device version, so a merged upload
-- replaces a sample by key.
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

PRAGMA user_version = 5;
