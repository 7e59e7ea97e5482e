#include "device_profiles/profile_store.h"

#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace squeeze::device_profiles {
namespace {

using common::Database;
using common::Statement;
using common::Transaction;

constexpr char kDeviceColumns[] =
    "id, version, name, vendor, soc, os, cpu, cpu_cores, simd, accelerator, ram_bytes, "
    "app_memory_budget_bytes, memory_bandwidth_bytes_per_s, runtime, runtime_version, threads, "
    "op_overhead_us, source, derivation, provenance, created_at, measure_tool, measure_mode, "
    "measure_started_at, measure_duration_s, measure_threads, measure_warmup_runs, measure_repeats, "
    "measure_cpu_governor, measure_cpu_frequency_khz, measure_cpu_max_frequency_khz, "
    "measure_runtime_version, measure_host";

Device DeviceFromRow(const Statement& row) {
  Device d;
  d.id = row.ColumnText("id");
  d.version = row.ColumnInt("version");
  d.name = row.ColumnText("name");
  d.vendor = row.ColumnText("vendor");
  d.soc = row.ColumnText("soc");
  d.os = row.ColumnText("os");
  d.cpu = row.ColumnText("cpu");
  d.cpu_cores = static_cast<int>(row.ColumnInt("cpu_cores"));
  d.simd_features = absl::StrSplit(row.ColumnText("simd"), ',', absl::SkipWhitespace());
  d.accelerator = row.ColumnText("accelerator");
  d.ram_bytes = row.ColumnInt("ram_bytes");
  d.app_memory_budget_bytes = row.ColumnInt("app_memory_budget_bytes");
  d.memory_bandwidth_bytes_per_s = row.ColumnDouble("memory_bandwidth_bytes_per_s");
  d.runtime = row.ColumnText("runtime");
  d.runtime_version = row.ColumnText("runtime_version");
  d.threads = static_cast<int>(row.ColumnInt("threads"));
  d.op_overhead_us = row.ColumnDouble("op_overhead_us");
  d.source = row.ColumnText("source");
  d.derivation = row.ColumnText("derivation");
  d.provenance = ParseProvenance(row.ColumnText("provenance")).value_or(Provenance::kSpec);
  d.created_at = row.ColumnText("created_at");
  if (!row.ColumnText("measure_tool").empty()) {
    ProfileConditions c;
    c.tool = row.ColumnText("measure_tool");
    c.mode = row.ColumnText("measure_mode");
    c.measured_at = row.ColumnText("measure_started_at");
    c.duration_seconds = row.ColumnDouble("measure_duration_s");
    c.threads = static_cast<int>(row.ColumnInt("measure_threads"));
    c.warmup_runs = static_cast<int>(row.ColumnInt("measure_warmup_runs"));
    c.repeats = static_cast<int>(row.ColumnInt("measure_repeats"));
    c.cpu_governor = row.ColumnText("measure_cpu_governor");
    c.cpu_frequency_khz = row.ColumnInt("measure_cpu_frequency_khz");
    c.cpu_max_frequency_khz = row.ColumnInt("measure_cpu_max_frequency_khz");
    c.runtime_version = row.ColumnText("measure_runtime_version");
    c.host = row.ColumnText("measure_host");
    d.conditions = std::move(c);
  }
  return d;
}

absl::Status LoadCapabilities(Database& db, Device& device) {
  absl::StatusOr<Statement> stmt = db.Prepare(
      "SELECT op_kind, weight_bits, activation_bits, sparsity, native, peak_ops_per_s, efficiency, "
      "source, derivation, provenance FROM capabilities WHERE device_id = ?1 AND device_version = ?2 "
      "ORDER BY op_kind, weight_bits DESC, activation_bits DESC, sparsity");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, device.id).Bind(2, device.version);
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    Capability c;
    c.op_kind = ParseOpKind(stmt->ColumnText("op_kind"));  // '*' parses to nullopt: every kind
    c.weight_bits = static_cast<int>(stmt->ColumnInt("weight_bits"));
    c.activation_bits = static_cast<int>(stmt->ColumnInt("activation_bits"));
    c.sparsity = ParseSparsity(stmt->ColumnText("sparsity")).value_or(Sparsity::kDense);
    c.native = stmt->ColumnInt("native") != 0;
    c.peak_ops_per_s = stmt->ColumnDouble("peak_ops_per_s");
    c.efficiency = stmt->ColumnDouble("efficiency");
    c.source = stmt->ColumnText("source");
    c.derivation = stmt->ColumnText("derivation");
    c.provenance = ParseProvenance(stmt->ColumnText("provenance")).value_or(Provenance::kSpec);
    device.capabilities.push_back(std::move(c));
  }
  absl::StatusOr<Statement> count = db.Prepare(
      "SELECT (SELECT count(*) FROM latency_samples WHERE device_id = ?1 AND device_version = ?2) AS samples, "
      "(SELECT count(*) FROM model_latencies WHERE device_id = ?1 AND device_version = ?2) AS model_latencies");
  if (!count.ok()) return count.status();
  count->Bind(1, device.id).Bind(2, device.version);
  absl::StatusOr<bool> row = count->Step();
  if (!row.ok()) return row.status();
  device.latency_sample_count = count->ColumnInt("samples");
  device.model_latency_count = count->ColumnInt("model_latencies");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ProfileStore>> ProfileStore::Open(const std::string& path,
                                                                 const ProfileStoreOptions& options) {
  absl::StatusOr<Database> db = Database::Open(path);
  if (!db.ok()) return db.status();
  std::unique_ptr<ProfileStore> store(new ProfileStore(*std::move(db), path));
  absl::MutexLock lock(&store->mutex_);
  absl::Status status = store->Initialize(options);
  if (!status.ok()) return status;
  return store;
}

absl::Status ProfileStore::Initialize(const ProfileStoreOptions& options) {
  absl::StatusOr<int> version = common::CheckSchemaVersion(db_, kProfileSchemaVersion, "profile database");
  if (!version.ok()) return version.status();
  if (*version == kProfileSchemaVersion) return absl::OkStatus();
  if (*version >= 1 && *version < kProfileSchemaVersion) {
    // Foreign keys off for the table rebuilds (a no-op inside a transaction, so before it).
    absl::Status status = db_.Exec("PRAGMA foreign_keys = OFF");
    if (!status.ok()) return status;
    absl::StatusOr<Transaction> txn = Transaction::Begin(db_);
    if (!txn.ok()) return txn.status();
    for (int v = *version + 1; v <= kProfileSchemaVersion; ++v) {
      const absl::string_view sql = ProfileMigrationSql(v);
      status = sql.empty() ? absl::InternalError(absl::StrCat("no migration to version ", v, " is built in"))
                           : db_.Exec(sql);
      if (!status.ok()) {
        return absl::FailedPreconditionError(absl::StrCat("migrating ", path_, " from schema version ", *version,
                                                          " to ", kProfileSchemaVersion,
                                                          " failed, nothing changed: ", status.message()));
      }
    }
    status = txn->Commit();
    if (!status.ok()) return status;
    return db_.Exec("PRAGMA foreign_keys = ON");
  }

  absl::StatusOr<Transaction> txn = Transaction::Begin(db_);
  if (!txn.ok()) return txn.status();
  absl::Status status = db_.Exec(ProfileSchemaSql());
  if (!status.ok()) return absl::InternalError(absl::StrCat("schema.sql: ", status.message()));
  if (options.seed) {
    status = db_.Exec(ProfileSeedSql());
    if (!status.ok()) return absl::InternalError(absl::StrCat("seed.sql: ", status.message()));
    for (int v : ProfileSeedMigrations()) {
      status = db_.Exec(ProfileMigrationSql(v));
      if (!status.ok()) return absl::InternalError(absl::StrCat("seed migration ", v, ": ", status.message()));
    }
  }
  if (options.host.has_value()) {
    absl::StatusOr<int64_t> host_version = InsertDevice(*options.host, {}, {});
    if (!host_version.ok()) return host_version.status();
  }
  return txn->Commit();
}

absl::StatusOr<Device> ProfileStore::ReadDevice(absl::string_view id, int64_t version) const {
  absl::StatusOr<Statement> stmt =
      version > 0 ? db_.Prepare(absl::StrCat("SELECT ", kDeviceColumns, " FROM devices WHERE id = ?1 AND version = ?2"))
                  : db_.Prepare(absl::StrCat("SELECT ", kDeviceColumns,
                                             " FROM devices WHERE id = ?1 ORDER BY version DESC LIMIT 1"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, id);
  if (version > 0) stmt->Bind(2, version);
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) {
    if (version > 0) {
      return absl::NotFoundError(absl::StrCat("device '", id, "' has no version ", version));
    }
    return absl::NotFoundError(absl::StrCat("no device '", id, "'; 'squeeze devices list' shows the known ids"));
  }
  Device device = DeviceFromRow(*stmt);
  absl::Status status = LoadCapabilities(db_, device);
  if (!status.ok()) return status;
  return device;
}

absl::StatusOr<std::vector<Device>> ProfileStore::ListDevices() const {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(
      absl::StrCat("SELECT ", kDeviceColumns,
                   " FROM devices d WHERE version = (SELECT max(version) FROM devices WHERE id = d.id) ORDER BY id"));
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<std::vector<Device>> rows = common::CollectRows(*stmt, DeviceFromRow);
  if (!rows.ok()) return rows.status();
  std::vector<Device> devices = *std::move(rows);
  for (Device& device : devices) {
    absl::Status status = LoadCapabilities(db_, device);
    if (!status.ok()) return status;
  }
  return devices;
}

absl::StatusOr<Device> ProfileStore::GetDevice(absl::string_view id, int64_t version) const {
  absl::MutexLock lock(&mutex_);
  return ReadDevice(id, version);
}

absl::StatusOr<std::vector<LatencySample>> ProfileStore::GetSamples(absl::string_view id, int64_t version) const {
  absl::MutexLock lock(&mutex_);
  return ReadSamples(id, version);
}

absl::StatusOr<std::vector<ModelLatency>> ProfileStore::GetModelLatencies(absl::string_view id, int64_t version) const {
  absl::MutexLock lock(&mutex_);
  return ReadModelLatencies(id, version);
}

absl::StatusOr<std::vector<LatencySample>> ProfileStore::ReadSamples(absl::string_view id, int64_t version) const {
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "SELECT sample_key, op_kind, batch, in_channels, out_channels, height, width, kernel, stride, "
      "groups, gemm_m, gemm_k, gemm_n, elements, weight_bits, activation_bits, sparsity, "
      "sparsity_ratio, macs, weight_bytes, activation_bytes, latency_median_us, latency_mean_us, "
      "latency_stddev_us, latency_p10_us, latency_p90_us, repeats, threads, runtime_version, "
      "measured_at, source, provenance FROM latency_samples "
      "WHERE device_id = ?1 AND device_version = ?2 ORDER BY id");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, id).Bind(2, version);
  return common::CollectRows(*stmt, [](const Statement& row) {
    LatencySample s;
    s.key = row.ColumnText("sample_key");
    s.op_kind = ParseOpKind(row.ColumnText("op_kind")).value_or(OpKind::kConv);
    s.batch = row.ColumnInt("batch");
    s.in_channels = row.ColumnInt("in_channels");
    s.out_channels = row.ColumnInt("out_channels");
    s.height = row.ColumnInt("height");
    s.width = row.ColumnInt("width");
    s.kernel = row.ColumnInt("kernel");
    s.stride = row.ColumnInt("stride");
    s.groups = row.ColumnInt("groups");
    s.gemm_m = row.ColumnInt("gemm_m");
    s.gemm_k = row.ColumnInt("gemm_k");
    s.gemm_n = row.ColumnInt("gemm_n");
    s.elements = row.ColumnInt("elements");
    s.weight_bits = static_cast<int>(row.ColumnInt("weight_bits"));
    s.activation_bits = static_cast<int>(row.ColumnInt("activation_bits"));
    s.sparsity = ParseSparsity(row.ColumnText("sparsity")).value_or(Sparsity::kDense);
    s.sparsity_ratio = row.ColumnDouble("sparsity_ratio");
    s.macs = row.ColumnInt("macs");
    s.weight_bytes = row.ColumnInt("weight_bytes");
    s.activation_bytes = row.ColumnInt("activation_bytes");
    s.latency_median_us = row.ColumnDouble("latency_median_us");
    s.latency_mean_us = row.ColumnDouble("latency_mean_us");
    s.latency_stddev_us = row.ColumnDouble("latency_stddev_us");
    s.latency_p10_us = row.ColumnDouble("latency_p10_us");
    s.latency_p90_us = row.ColumnDouble("latency_p90_us");
    s.repeats = static_cast<int>(row.ColumnInt("repeats"));
    s.threads = static_cast<int>(row.ColumnInt("threads"));
    s.runtime_version = row.ColumnText("runtime_version");
    s.measured_at = row.ColumnText("measured_at");
    s.source = row.ColumnText("source");
    s.provenance = ParseProvenance(row.ColumnText("provenance")).value_or(Provenance::kMeasured);
    return s;
  });
}

absl::StatusOr<std::vector<ModelLatency>> ProfileStore::ReadModelLatencies(absl::string_view id,
                                                                           int64_t version) const {
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "SELECT latency_key, model_sha256, model_name, variant, latency_median_us, latency_p10_us, "
      "latency_p90_us, repeats, threads, measured_at, source FROM model_latencies "
      "WHERE device_id = ?1 AND device_version = ?2 ORDER BY rowid");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, id).Bind(2, version);
  return common::CollectRows(*stmt, [](const Statement& row) {
    ModelLatency m;
    m.key = row.ColumnText("latency_key");
    m.model_sha256 = row.ColumnText("model_sha256");
    m.model_name = row.ColumnText("model_name");
    m.variant = row.ColumnText("variant");
    m.latency_median_us = row.ColumnDouble("latency_median_us");
    m.latency_p10_us = row.ColumnDouble("latency_p10_us");
    m.latency_p90_us = row.ColumnDouble("latency_p90_us");
    m.repeats = static_cast<int>(row.ColumnInt("repeats"));
    m.threads = static_cast<int>(row.ColumnInt("threads"));
    m.measured_at = row.ColumnText("measured_at");
    m.source = row.ColumnText("source");
    return m;
  });
}

absl::StatusOr<int64_t> ProfileStore::PutDevice(const Device& device, const std::vector<LatencySample>& samples,
                                                const std::vector<ModelLatency>& model_latencies) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Transaction> txn = Transaction::Begin(db_);
  if (!txn.ok()) return txn.status();
  absl::StatusOr<int64_t> version = InsertDevice(device, samples, model_latencies);
  if (!version.ok()) return version.status();
  absl::Status status = txn->Commit();
  if (!status.ok()) return status;
  return version;
}

absl::StatusOr<int64_t> ProfileStore::MergeDevice(absl::string_view id, const std::optional<Device>& device,
                                                  const std::vector<LatencySample>& samples,
                                                  const std::vector<ModelLatency>& model_latencies) {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Transaction> txn = Transaction::Begin(db_);
  if (!txn.ok()) return txn.status();
  absl::StatusOr<Device> stored = ReadDevice(id, 0);
  if (!stored.ok()) return stored.status();
  absl::StatusOr<std::vector<LatencySample>> merged_samples = ReadSamples(id, stored->version);
  if (!merged_samples.ok()) return merged_samples.status();
  absl::StatusOr<std::vector<ModelLatency>> merged_latencies = ReadModelLatencies(id, stored->version);
  if (!merged_latencies.ok()) return merged_latencies.status();
  // Stored order first, each replaced in place by an upload with its key; new keys appended.
  auto merge = [](auto& into, const auto& from) {
    absl::flat_hash_map<std::string, size_t> index;
    for (size_t i = 0; i < into.size(); ++i) index.emplace(into[i].key, i);
    for (const auto& entry : from) {
      auto it = index.find(entry.key);
      if (it != index.end()) {
        into[it->second] = entry;
      } else {
        index.emplace(entry.key, into.size());
        into.push_back(entry);
      }
    }
  };
  merge(*merged_samples, samples);
  merge(*merged_latencies, model_latencies);
  Device next = device.has_value() ? *device : *stored;
  next.id = std::string(id);
  absl::StatusOr<int64_t> version = InsertDevice(next, *merged_samples, *merged_latencies);
  if (!version.ok()) return version.status();
  absl::Status status = txn->Commit();
  if (!status.ok()) return status;
  return version;
}

absl::StatusOr<int64_t> ProfileStore::InsertDevice(const Device& device, const std::vector<LatencySample>& samples,
                                                   const std::vector<ModelLatency>& model_latencies) {
  absl::Status status = ValidateDevice(device);
  if (!status.ok()) return status;
  for (const LatencySample& sample : samples) {
    status = ValidateSample(sample);
    if (!status.ok()) return status;
  }
  absl::StatusOr<Statement> next = db_.Prepare("SELECT coalesce(max(version), 0) + 1 FROM devices WHERE id = ?1");
  if (!next.ok()) return next.status();
  next->Bind(1, device.id);
  absl::StatusOr<bool> row = next->Step();
  if (!row.ok()) return row.status();
  const int64_t version = next->ColumnInt(0);

  absl::StatusOr<Statement> insert = db_.Prepare(
      absl::StrCat("INSERT INTO devices (", kDeviceColumns,
                   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
                   "?19, ?20, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, "
                   "?30, ?31, ?32)"));
  if (!insert.ok()) return insert.status();
  insert->Bind(1, device.id)
      .Bind(2, version)
      .Bind(3, device.name)
      .Bind(4, device.vendor)
      .Bind(5, device.soc)
      .Bind(6, device.os)
      .Bind(7, device.cpu)
      .Bind(8, device.cpu_cores)
      .Bind(9, absl::StrJoin(device.simd_features, ","))
      .Bind(10, device.accelerator)
      .Bind(11, device.ram_bytes)
      .Bind(12, device.app_memory_budget_bytes)
      .Bind(13, device.memory_bandwidth_bytes_per_s)
      .Bind(14, device.runtime)
      .Bind(15, device.runtime_version)
      .Bind(16, device.threads)
      .Bind(17, device.op_overhead_us)
      .Bind(18, device.source)
      .Bind(19, device.derivation)
      .Bind(20, ProvenanceName(device.provenance));
  const ProfileConditions conditions = device.conditions.value_or(ProfileConditions{});
  insert->Bind(21, conditions.tool)
      .Bind(22, conditions.mode)
      .Bind(23, conditions.measured_at)
      .Bind(24, conditions.duration_seconds)
      .Bind(25, conditions.threads)
      .Bind(26, conditions.warmup_runs)
      .Bind(27, conditions.repeats)
      .Bind(28, conditions.cpu_governor)
      .Bind(29, conditions.cpu_frequency_khz)
      .Bind(30, conditions.cpu_max_frequency_khz)
      .Bind(31, conditions.runtime_version)
      .Bind(32, conditions.host);
  status = insert->Run();
  if (!status.ok()) return status;

  absl::StatusOr<Statement> cap = db_.Prepare(
      "INSERT INTO capabilities (device_id, device_version, op_kind, weight_bits, activation_bits, "
      "sparsity, native, peak_ops_per_s, efficiency, source, derivation, provenance) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
  if (!cap.ok()) return cap.status();
  for (const Capability& c : device.capabilities) {
    cap->Reset();
    cap->Bind(1, device.id)
        .Bind(2, version)
        .Bind(3, c.op_kind ? OpKindName(*c.op_kind) : absl::string_view("*"))
        .Bind(4, c.weight_bits)
        .Bind(5, c.activation_bits)
        .Bind(6, SparsityName(c.sparsity))
        .Bind(7, c.native ? 1 : 0)
        .Bind(8, c.peak_ops_per_s)
        .Bind(9, c.efficiency)
        .Bind(10, c.source.empty() ? device.source : c.source)
        .Bind(11, c.derivation)
        .Bind(12, ProvenanceName(c.provenance));
    status = cap->Run();
    if (status.code() == absl::StatusCode::kAlreadyExists) {
      return absl::InvalidArgumentError(absl::StrCat("device '", device.id, "' lists capability ",
                                                     c.op_kind ? OpKindName(*c.op_kind) : "*", " w", c.weight_bits, "a",
                                                     c.activation_bits, " ", SparsityName(c.sparsity), " twice"));
    }
    if (!status.ok()) return status;
  }

  absl::StatusOr<Statement> sample = db_.Prepare(
      "INSERT INTO latency_samples (device_id, device_version, op_kind, batch, in_channels, "
      "out_channels, height, width, kernel, stride, groups, gemm_m, gemm_k, gemm_n, weight_bits, "
      "activation_bits, sparsity, sparsity_ratio, macs, weight_bytes, activation_bytes, "
      "latency_mean_us, latency_stddev_us, repeats, threads, runtime_version, measured_at, source, "
      "provenance, sample_key, elements, latency_median_us, latency_p10_us, latency_p90_us) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
      "?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34)");
  if (!sample.ok()) return sample.status();
  for (const LatencySample& s : samples) {
    sample->Reset();
    sample->Bind(1, device.id)
        .Bind(2, version)
        .Bind(3, OpKindName(s.op_kind))
        .Bind(4, s.batch)
        .Bind(5, s.in_channels)
        .Bind(6, s.out_channels)
        .Bind(7, s.height)
        .Bind(8, s.width)
        .Bind(9, s.kernel)
        .Bind(10, s.stride)
        .Bind(11, s.groups)
        .Bind(12, s.gemm_m)
        .Bind(13, s.gemm_k)
        .Bind(14, s.gemm_n)
        .Bind(15, s.weight_bits)
        .Bind(16, s.activation_bits)
        .Bind(17, SparsityName(s.sparsity))
        .Bind(18, s.sparsity_ratio)
        .Bind(19, s.macs)
        .Bind(20, s.weight_bytes)
        .Bind(21, s.activation_bytes)
        .Bind(22, s.latency_mean_us)
        .Bind(23, s.latency_stddev_us)
        .Bind(24, s.repeats)
        .Bind(25, s.threads)
        .Bind(26, s.runtime_version)
        .Bind(27, s.measured_at)
        .Bind(28, s.source)
        .Bind(29, ProvenanceName(s.provenance))
        .Bind(30, s.key.empty() ? absl::StrCat("sample ", &s - samples.data() + 1) : s.key)
        .Bind(31, s.elements)
        .Bind(32, s.latency_median_us)
        .Bind(33, s.latency_p10_us)
        .Bind(34, s.latency_p90_us);
    status = sample->Run();
    if (status.code() == absl::StatusCode::kAlreadyExists) {
      return absl::InvalidArgumentError(
          absl::StrCat("device '", device.id, "': sample id '", s.key, "' appears twice"));
    }
    if (!status.ok()) return status;
  }

  absl::StatusOr<Statement> latency = db_.Prepare(
      "INSERT INTO model_latencies (device_id, device_version, latency_key, model_sha256, model_name, "
      "variant, latency_median_us, latency_p10_us, latency_p90_us, repeats, threads, measured_at, source) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
  if (!latency.ok()) return latency.status();
  for (const ModelLatency& m : model_latencies) {
    latency->Reset();
    latency->Bind(1, device.id)
        .Bind(2, version)
        .Bind(3, m.key)
        .Bind(4, m.model_sha256)
        .Bind(5, m.model_name)
        .Bind(6, m.variant)
        .Bind(7, m.latency_median_us)
        .Bind(8, m.latency_p10_us)
        .Bind(9, m.latency_p90_us)
        .Bind(10, m.repeats)
        .Bind(11, m.threads)
        .Bind(12, m.measured_at)
        .Bind(13, m.source);
    status = latency->Run();
    if (status.code() == absl::StatusCode::kAlreadyExists) {
      return absl::InvalidArgumentError(
          absl::StrCat("device '", device.id, "': model latency id '", m.key, "' appears twice"));
    }
    if (!status.ok()) return status;
  }
  return version;
}

}  // namespace squeeze::device_profiles
