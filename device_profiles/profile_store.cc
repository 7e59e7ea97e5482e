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
  d.id = row.ColumnText(0);
  d.version = row.ColumnInt(1);
  d.name = row.ColumnText(2);
  d.vendor = row.ColumnText(3);
  d.soc = row.ColumnText(4);
  d.os = row.ColumnText(5);
  d.cpu = row.ColumnText(6);
  d.cpu_cores = static_cast<int>(row.ColumnInt(7));
  d.simd_features = absl::StrSplit(row.ColumnText(8), ',', absl::SkipWhitespace());
  d.accelerator = row.ColumnText(9);
  d.ram_bytes = row.ColumnInt(10);
  d.app_memory_budget_bytes = row.ColumnInt(11);
  d.memory_bandwidth_bytes_per_s = row.ColumnDouble(12);
  d.runtime = row.ColumnText(13);
  d.runtime_version = row.ColumnText(14);
  d.threads = static_cast<int>(row.ColumnInt(15));
  d.op_overhead_us = row.ColumnDouble(16);
  d.source = row.ColumnText(17);
  d.derivation = row.ColumnText(18);
  d.provenance = ParseProvenance(row.ColumnText(19)).value_or(Provenance::kSpec);
  d.created_at = row.ColumnText(20);
  if (!row.ColumnText(21).empty()) {
    ProfileConditions c;
    c.tool = row.ColumnText(21);
    c.mode = row.ColumnText(22);
    c.measured_at = row.ColumnText(23);
    c.duration_seconds = row.ColumnDouble(24);
    c.threads = static_cast<int>(row.ColumnInt(25));
    c.warmup_runs = static_cast<int>(row.ColumnInt(26));
    c.repeats = static_cast<int>(row.ColumnInt(27));
    c.cpu_governor = row.ColumnText(28);
    c.cpu_frequency_khz = row.ColumnInt(29);
    c.cpu_max_frequency_khz = row.ColumnInt(30);
    c.runtime_version = row.ColumnText(31);
    c.host = row.ColumnText(32);
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
    c.op_kind = ParseOpKind(stmt->ColumnText(0));  // '*' parses to nullopt: every kind
    c.weight_bits = static_cast<int>(stmt->ColumnInt(1));
    c.activation_bits = static_cast<int>(stmt->ColumnInt(2));
    c.sparsity = ParseSparsity(stmt->ColumnText(3)).value_or(Sparsity::kDense);
    c.native = stmt->ColumnInt(4) != 0;
    c.peak_ops_per_s = stmt->ColumnDouble(5);
    c.efficiency = stmt->ColumnDouble(6);
    c.source = stmt->ColumnText(7);
    c.derivation = stmt->ColumnText(8);
    c.provenance = ParseProvenance(stmt->ColumnText(9)).value_or(Provenance::kSpec);
    device.capabilities.push_back(std::move(c));
  }
  absl::StatusOr<Statement> count = db.Prepare(
      "SELECT (SELECT count(*) FROM latency_samples WHERE device_id = ?1 AND device_version = ?2), "
      "(SELECT count(*) FROM model_latencies WHERE device_id = ?1 AND device_version = ?2)");
  if (!count.ok()) return count.status();
  count->Bind(1, device.id).Bind(2, device.version);
  absl::StatusOr<bool> row = count->Step();
  if (!row.ok()) return row.status();
  device.latency_sample_count = count->ColumnInt(0);
  device.model_latency_count = count->ColumnInt(1);
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
    s.key = row.ColumnText(0);
    s.op_kind = ParseOpKind(row.ColumnText(1)).value_or(OpKind::kConv);
    s.batch = row.ColumnInt(2);
    s.in_channels = row.ColumnInt(3);
    s.out_channels = row.ColumnInt(4);
    s.height = row.ColumnInt(5);
    s.width = row.ColumnInt(6);
    s.kernel = row.ColumnInt(7);
    s.stride = row.ColumnInt(8);
    s.groups = row.ColumnInt(9);
    s.gemm_m = row.ColumnInt(10);
    s.gemm_k = row.ColumnInt(11);
    s.gemm_n = row.ColumnInt(12);
    s.elements = row.ColumnInt(13);
    s.weight_bits = static_cast<int>(row.ColumnInt(14));
    s.activation_bits = static_cast<int>(row.ColumnInt(15));
    s.sparsity = ParseSparsity(row.ColumnText(16)).value_or(Sparsity::kDense);
    s.sparsity_ratio = row.ColumnDouble(17);
    s.macs = row.ColumnInt(18);
    s.weight_bytes = row.ColumnInt(19);
    s.activation_bytes = row.ColumnInt(20);
    s.latency_median_us = row.ColumnDouble(21);
    s.latency_mean_us = row.ColumnDouble(22);
    s.latency_stddev_us = row.ColumnDouble(23);
    s.latency_p10_us = row.ColumnDouble(24);
    s.latency_p90_us = row.ColumnDouble(25);
    s.repeats = static_cast<int>(row.ColumnInt(26));
    s.threads = static_cast<int>(row.ColumnInt(27));
    s.runtime_version = row.ColumnText(28);
    s.measured_at = row.ColumnText(29);
    s.source = row.ColumnText(30);
    s.provenance = ParseProvenance(row.ColumnText(31)).value_or(Provenance::kMeasured);
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
    m.key = row.ColumnText(0);
    m.model_sha256 = row.ColumnText(1);
    m.model_name = row.ColumnText(2);
    m.variant = row.ColumnText(3);
    m.latency_median_us = row.ColumnDouble(4);
    m.latency_p10_us = row.ColumnDouble(5);
    m.latency_p90_us = row.ColumnDouble(6);
    m.repeats = static_cast<int>(row.ColumnInt(7));
    m.threads = static_cast<int>(row.ColumnInt(8));
    m.measured_at = row.ColumnText(9);
    m.source = row.ColumnText(10);
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
