#include "device_profiles/profile_store.h"

#include <utility>

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
    "op_overhead_us, source, derivation, provenance, created_at";

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
      "SELECT count(*) FROM latency_samples WHERE device_id = ?1 AND device_version = ?2");
  if (!count.ok()) return count.status();
  count->Bind(1, device.id).Bind(2, device.version);
  absl::StatusOr<bool> row = count->Step();
  if (!row.ok()) return row.status();
  device.latency_sample_count = count->ColumnInt(0);
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

  absl::StatusOr<Transaction> txn = Transaction::Begin(db_);
  if (!txn.ok()) return txn.status();
  absl::Status status = db_.Exec(ProfileSchemaSql());
  if (!status.ok()) return absl::InternalError(absl::StrCat("schema.sql: ", status.message()));
  if (options.seed) {
    status = db_.Exec(ProfileSeedSql());
    if (!status.ok()) return absl::InternalError(absl::StrCat("seed.sql: ", status.message()));
  }
  if (options.host.has_value()) {
    absl::StatusOr<int64_t> host_version = InsertDevice(*options.host, {});
    if (!host_version.ok()) return host_version.status();
  }
  return txn->Commit();
}

absl::StatusOr<Device> ProfileStore::ReadDevice(absl::string_view id, int64_t version) const {
  absl::StatusOr<Statement> stmt =
      version > 0
          ? db_.Prepare(absl::StrCat("SELECT ", kDeviceColumns,
                                     " FROM devices WHERE id = ?1 AND version = ?2"))
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
    return absl::NotFoundError(
        absl::StrCat("no device '", id, "'; 'squeeze devices list' shows the known ids"));
  }
  Device device = DeviceFromRow(*stmt);
  absl::Status status = LoadCapabilities(db_, device);
  if (!status.ok()) return status;
  return device;
}

absl::StatusOr<std::vector<Device>> ProfileStore::ListDevices() const {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(absl::StrCat(
      "SELECT ", kDeviceColumns,
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

absl::StatusOr<std::vector<LatencySample>> ProfileStore::GetSamples(absl::string_view id,
                                                                    int64_t version) const {
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "SELECT op_kind, batch, in_channels, out_channels, height, width, kernel, stride, groups, "
      "gemm_m, gemm_k, gemm_n, weight_bits, activation_bits, sparsity, sparsity_ratio, macs, "
      "weight_bytes, activation_bytes, latency_mean_us, latency_stddev_us, repeats, threads, "
      "runtime_version, measured_at, source, provenance FROM latency_samples "
      "WHERE device_id = ?1 AND device_version = ?2 ORDER BY id");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, id).Bind(2, version);
  return common::CollectRows(*stmt, [](const Statement& row) {
    LatencySample s;
    s.op_kind = ParseOpKind(row.ColumnText(0)).value_or(OpKind::kConv);
    s.batch = row.ColumnInt(1);
    s.in_channels = row.ColumnInt(2);
    s.out_channels = row.ColumnInt(3);
    s.height = row.ColumnInt(4);
    s.width = row.ColumnInt(5);
    s.kernel = row.ColumnInt(6);
    s.stride = row.ColumnInt(7);
    s.groups = row.ColumnInt(8);
    s.gemm_m = row.ColumnInt(9);
    s.gemm_k = row.ColumnInt(10);
    s.gemm_n = row.ColumnInt(11);
    s.weight_bits = static_cast<int>(row.ColumnInt(12));
    s.activation_bits = static_cast<int>(row.ColumnInt(13));
    s.sparsity = ParseSparsity(row.ColumnText(14)).value_or(Sparsity::kDense);
    s.sparsity_ratio = row.ColumnDouble(15);
    s.macs = row.ColumnInt(16);
    s.weight_bytes = row.ColumnInt(17);
    s.activation_bytes = row.ColumnInt(18);
    s.latency_mean_us = row.ColumnDouble(19);
    s.latency_stddev_us = row.ColumnDouble(20);
    s.repeats = static_cast<int>(row.ColumnInt(21));
    s.threads = static_cast<int>(row.ColumnInt(22));
    s.runtime_version = row.ColumnText(23);
    s.measured_at = row.ColumnText(24);
    s.source = row.ColumnText(25);
    s.provenance = ParseProvenance(row.ColumnText(26)).value_or(Provenance::kMeasured);
    return s;
  });
}

absl::StatusOr<int64_t> ProfileStore::PutDevice(const Device& device,
                                                const std::vector<LatencySample>& samples) {
  absl::Status status = ValidateDevice(device);
  if (!status.ok()) return status;
  for (const LatencySample& sample : samples) {
    status = ValidateSample(sample);
    if (!status.ok()) return status;
  }
  absl::MutexLock lock(&mutex_);
  absl::StatusOr<Transaction> txn = Transaction::Begin(db_);
  if (!txn.ok()) return txn.status();
  absl::StatusOr<int64_t> version = InsertDevice(device, samples);
  if (!version.ok()) return version.status();
  status = txn->Commit();
  if (!status.ok()) return status;
  return version;
}

absl::StatusOr<int64_t> ProfileStore::InsertDevice(const Device& device,
                                                   const std::vector<LatencySample>& samples) {
  absl::Status status = ValidateDevice(device);
  if (!status.ok()) return status;
  absl::StatusOr<Statement> next =
      db_.Prepare("SELECT coalesce(max(version), 0) + 1 FROM devices WHERE id = ?1");
  if (!next.ok()) return next.status();
  next->Bind(1, device.id);
  absl::StatusOr<bool> row = next->Step();
  if (!row.ok()) return row.status();
  const int64_t version = next->ColumnInt(0);

  absl::StatusOr<Statement> insert = db_.Prepare(absl::StrCat(
      "INSERT INTO devices (", kDeviceColumns,
      ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
      "?19, ?20, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"));
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
      return absl::InvalidArgumentError(absl::StrCat(
          "device '", device.id, "' lists capability ", c.op_kind ? OpKindName(*c.op_kind) : "*",
          " w", c.weight_bits, "a", c.activation_bits, " ", SparsityName(c.sparsity), " twice"));
    }
    if (!status.ok()) return status;
  }

  absl::StatusOr<Statement> sample = db_.Prepare(
      "INSERT INTO latency_samples (device_id, device_version, op_kind, batch, in_channels, "
      "out_channels, height, width, kernel, stride, groups, gemm_m, gemm_k, gemm_n, weight_bits, "
      "activation_bits, sparsity, sparsity_ratio, macs, weight_bytes, activation_bytes, "
      "latency_mean_us, latency_stddev_us, repeats, threads, runtime_version, measured_at, source, "
      "provenance) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
      "?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)");
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
        .Bind(29, ProvenanceName(s.provenance));
    status = sample->Run();
    if (!status.ok()) return status;
  }
  return version;
}

}  // namespace squeeze::device_profiles
