#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "common/sha256.h"
#include "common/sqlite.h"
#include "server/blob_store.h"
#include "server/state_store.h"
#include "tests/testing/full_disk.h"
#include "tests/testing/temp_dir.h"

namespace squeeze::server {
namespace {

namespace fs = std::filesystem;

int FilesUnder(const std::string& dir) {
  int n = 0;
  std::error_code error;
  for (const auto& e : fs::recursive_directory_iterator(dir, error)) n += e.is_regular_file();
  return n;
}

TEST_CASE("SHA-256 matches the standard test vector", "[sha256]") {
  CHECK(common::Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  common::Sha256 streaming;
  streaming.Update("a");
  streaming.Update("bc");
  CHECK(streaming.HexDigest() == common::Sha256Hex("abc"));
  CHECK(common::RandomHex(8).size() == 16);
  CHECK(common::RandomHex(8) != common::RandomHex(8));
}

TEST_CASE("Blobs are content addressed and written atomically", "[blob_store]") {
  testing::TempDir dir;
  auto store = BlobStore::Open(dir.File("blobs"));
  REQUIRE(store.ok());

  absl::StatusOr<std::unique_ptr<BlobWriter>> writer = (*store)->NewWriter();
  REQUIRE(writer.ok());
  REQUIRE((*writer)->Append("ab").ok());
  REQUIRE((*writer)->Append("c").ok());
  CHECK(FilesUnder(dir.File("blobs")) == 1);  // only the temporary file
  CHECK_FALSE((*store)->Contains(common::Sha256Hex("abc")));
  absl::StatusOr<std::string> digest = (*store)->Commit(**writer);
  REQUIRE(digest.ok());
  CHECK(*digest == common::Sha256Hex("abc"));
  CHECK((*store)->Contains(*digest));
  CHECK(*(*store)->Read(*digest) == "abc");
  CHECK(*(*store)->Size(*digest) == 3);

  // The same bytes again are the same blob; nothing else stays behind.
  REQUIRE((*store)->Put("abc").ok());
  CHECK(FilesUnder(dir.File("blobs")) == 1);
}

TEST_CASE("An aborted or abandoned writer leaves no file", "[blob_store]") {
  testing::TempDir dir;
  auto store = BlobStore::Open(dir.File("blobs"));
  REQUIRE(store.ok());
  {
    auto writer = (*store)->NewWriter();
    REQUIRE(writer.ok());
    REQUIRE((*writer)->Append("partial").ok());
  }
  auto writer = (*store)->NewWriter();
  REQUIRE(writer.ok());
  REQUIRE((*writer)->Append("partial").ok());
  (*writer)->Abort();
  CHECK(FilesUnder(dir.File("blobs")) == 0);
}

TEST_CASE("A corrupted blob reads as DataLoss", "[blob_store]") {
  testing::TempDir dir;
  auto store = BlobStore::Open(dir.File("blobs"));
  REQUIRE(store.ok());
  absl::StatusOr<std::string> digest = (*store)->Put("precious bytes");
  REQUIRE(digest.ok());
  { std::ofstream((*store)->PathOf(*digest)) << "flipped"; }
  CHECK((*store)->Read(*digest).status().code() == absl::StatusCode::kDataLoss);
  CHECK((*store)->Read("not-a-digest").status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Opening removes unfinished uploads and garbage collection keeps referenced blobs", "[blob_store]") {
  testing::TempDir dir;
  std::string keep, drop;
  {
    auto store = BlobStore::Open(dir.File("blobs"));
    REQUIRE(store.ok());
    keep = *(*store)->Put("keep");
    drop = *(*store)->Put("drop");
    auto writer = (*store)->NewWriter();
    REQUIRE((*writer)->Append("crash").ok());
    // Simulate a crash: the temporary file outlives the process.
    fs::copy_file((*writer)->temp_path(), dir.File("blobs/tmp/upload-left-behind"));
  }
  auto store = BlobStore::Open(dir.File("blobs"));
  REQUIRE(store.ok());
  CHECK(FilesUnder(dir.File("blobs/tmp")) == 0);
  absl::StatusOr<int> removed = (*store)->CollectGarbage({keep});
  REQUIRE(removed.ok());
  CHECK(*removed == 1);
  CHECK((*store)->Contains(keep));
  CHECK_FALSE((*store)->Contains(drop));
}

ModelRecord Record(const std::string& team, const std::string& sha_seed) {
  ModelRecord r;
  r.team = team;
  r.name = "m.onnx";
  r.sha256 = common::Sha256Hex(sha_seed);
  r.size_bytes = 10;
  r.input_shapes = "x=1,3";
  r.analysis = "proto bytes";
  return r;
}

TEST_CASE("An id that cannot be one is refused before any lookup and never echoed whole", "[state_store]") {
  testing::TempDir dir;
  auto state = StateStore::Open(dir.File("state.db"));
  REQUIRE(state.ok());
  const std::string forged = "m-1\n2026-12-06T00:00:00.000Z INFO rpc method=/squeeze.v1.Auth/CreateApiKey code=OK";
  for (const std::string& id : {forged, std::string(8 << 20, 'a'), std::string(), std::string("m 1")}) {
    absl::StatusOr<ModelRecord> model = (*state)->GetModel("alpha", id);
    REQUIRE(model.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(model.status().message().size() < 300);
    CHECK(model.status().message().find('\n') == absl::string_view::npos);
    CHECK((*state)->GetJob("alpha", id).status().code() == absl::StatusCode::kInvalidArgument);
    CHECK((*state)->DeleteModel("alpha", id).status().code() == absl::StatusCode::kInvalidArgument);
    CHECK((*state)->RevokeApiKey(id).status().code() == absl::StatusCode::kInvalidArgument);
  }
  // A well-formed id that names nothing is still NotFound.
  CHECK((*state)->GetModel("alpha", "m-0123456789ab").status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("Models belong to their team", "[state_store]") {
  testing::TempDir dir;
  auto state = StateStore::Open(dir.File("state.db"));
  REQUIRE(state.ok());
  absl::StatusOr<ModelRecord> a = (*state)->InsertModel(Record("alpha", "one"));
  REQUIRE(a.ok());
  CHECK(a->id.rfind("m-", 0) == 0);
  CHECK_FALSE(a->created_at.empty());
  REQUIRE((*state)->InsertModel(Record("beta", "one")).ok());

  CHECK((*state)->GetModel("alpha", a->id).ok());
  absl::StatusOr<ModelRecord> other = (*state)->GetModel("beta", a->id);
  CHECK(other.status().code() == absl::StatusCode::kNotFound);
  CHECK((*state)->DeleteModel("beta", a->id).status().code() == absl::StatusCode::kNotFound);
  CHECK((*state)->ListModels("alpha")->size() == 1);
  CHECK(*(*state)->CountModelsWithBlob(common::Sha256Hex("one")) == 2);

  absl::StatusOr<std::optional<ModelRecord>> found = (*state)->FindModel("alpha", common::Sha256Hex("one"), "x=1,3");
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->id == a->id);
  CHECK_FALSE((*(*state)->FindModel("alpha", common::Sha256Hex("one"), "x=2,3")).has_value());

  REQUIRE((*state)->DeleteModel("alpha", a->id).ok());
  CHECK(*(*state)->CountModelsWithBlob(common::Sha256Hex("one")) == 1);
  CHECK((*state)->ReferencedBlobs()->size() == 1);
}

TEST_CASE("state.db survives reopening and refuses foreign files", "[state_store]") {
  testing::TempDir dir;
  {
    auto state = StateStore::Open(dir.File("state.db"));
    REQUIRE(state.ok());
    REQUIRE((*state)->InsertModel(Record("alpha", "x")).ok());
  }
  auto state = StateStore::Open(dir.File("state.db"));
  REQUIRE(state.ok());
  CHECK((*state)->ListModels("alpha")->size() == 1);
  {
    auto db = common::Database::Open(dir.File("foreign.db"));
    REQUIRE(db->Exec("CREATE TABLE t (x)").ok());
  }
  CHECK(StateStore::Open(dir.File("foreign.db")).status().code() == absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace squeeze::server

namespace squeeze::server {
namespace {

TEST_CASE("Sensitivities are cached per model bytes, calibration set and options", "[state_store]") {
  testing::TempDir dir;
  {
    auto state = StateStore::Open(dir.File("state.db"));
    REQUIRE(state.ok());
    CHECK_FALSE((*(*state)->GetSensitivity("sha", "cal", "eps=0.001")).has_value());
    REQUIRE((*state)->PutSensitivity("sha", "cal", "eps=0.001", std::string("report\\0bytes", 13)).ok());
    REQUIRE((*state)->PutSensitivity("sha", "cal", "eps=0.001", "newer").ok());
  }
  auto state = StateStore::Open(dir.File("state.db"));
  REQUIRE(state.ok());
  absl::StatusOr<std::optional<std::string>> cached = (*state)->GetSensitivity("sha", "cal", "eps=0.001");
  REQUIRE(cached.ok());
  REQUIRE(cached->has_value());
  CHECK(**cached == "newer");
  CHECK_FALSE((*(*state)->GetSensitivity("sha", "other-calibration", "eps=0.001")).has_value());
}

TEST_CASE("A version-1 state.db is migrated in place", "[state_store]") {
  testing::TempDir dir;
  {
    auto db = common::Database::Open(dir.File("state.db"));
    REQUIRE(db.ok());
    REQUIRE(db->Exec("CREATE TABLE models (id TEXT PRIMARY KEY, team TEXT NOT NULL, name TEXT NOT NULL, "
                     "sha256 TEXT NOT NULL, size_bytes INTEGER NOT NULL, input_shapes TEXT NOT NULL, "
                     "analysis BLOB NOT NULL, created_at TEXT NOT NULL); PRAGMA user_version = 1;")
                .ok());
  }
  auto state = StateStore::Open(dir.File("state.db"));
  REQUIRE(state.ok());
  CHECK((*state)->PutSensitivity("sha", "cal", "k", "r").ok());
  auto db = common::Database::Open(dir.File("state.db"));
  CHECK(*db->UserVersion() == kStateSchemaVersion);
}

}  // namespace
}  // namespace squeeze::server

namespace squeeze::server {
namespace {

TEST_CASE("Jobs are stored with their state and found again after a restart", "[state_store]") {
  testing::TempDir dir;
  std::string id;
  {
    auto state = StateStore::Open(dir.File("state.db"));
    REQUIRE(state.ok());
    JobRecord job;
    job.team = "alpha";
    job.model_id = "m-1";
    job.cache_key = "key";
    job.spec = "spec bytes";
    absl::StatusOr<JobRecord> inserted = (*state)->InsertJob(job);
    REQUIRE(inserted.ok());
    id = inserted->id;
    CHECK(id.rfind("s-", 0) == 0);
    CHECK((*state)->GetJob("beta", id).status().code() == absl::StatusCode::kNotFound);

    inserted->state = 2;  // running
    inserted->phase = 5;
    inserted->fraction = 0.5;
    REQUIRE((*state)->UpdateJob(*inserted).ok());
    JobRecord running = *(*state)->GetJob("alpha", id);
    CHECK_FALSE(running.started_at.empty());
    CHECK(running.finished_at.empty());
    CHECK_FALSE((*(*state)->FindFinishedJob("alpha", "key")).has_value());
  }
  // The process died: the job is still unfinished when the store is opened again.
  auto state = StateStore::Open(dir.File("state.db"));
  REQUIRE(state.ok());
  absl::StatusOr<std::vector<JobRecord>> unfinished = (*state)->UnfinishedJobs();
  REQUIRE(unfinished.ok());
  REQUIRE(unfinished->size() == 1);
  JobRecord job = unfinished->front();
  CHECK(job.spec == "spec bytes");
  job.state = 3;  // succeeded
  job.phase = 7;
  job.fraction = 1;
  job.result = "fronts";
  REQUIRE((*state)->UpdateJob(job).ok());
  CHECK((*state)->UnfinishedJobs()->empty());
  absl::StatusOr<std::optional<JobRecord>> cached = (*state)->FindFinishedJob("alpha", "key");
  REQUIRE(cached.ok());
  REQUIRE(cached->has_value());
  CHECK((*cached)->result == "fronts");
  CHECK_FALSE((*cached)->finished_at.empty());
  CHECK_FALSE((*(*state)->FindFinishedJob("beta", "key")).has_value());
  CHECK((*state)->ListJobs("alpha", 10)->size() == 1);
  job.id = "s-missing";
  CHECK((*state)->UpdateJob(job).code() == absl::StatusCode::kNotFound);
}

TEST_CASE("On a full disk every write is refused as ResourceExhausted and nothing unstored is acknowledged",
          "[state_store]") {
  testing::FullDisk disk;  // before the store opens its database
  testing::TempDir dir;
  auto state = StateStore::Open(dir.File("state.db"));
  REQUIRE(state.ok());
  JobRecord job;
  job.team = "alpha";
  job.model_id = "m-1";
  job.cache_key = "key";
  absl::StatusOr<JobRecord> kept = (*state)->InsertJob(job);
  REQUIRE(kept.ok());
  ModelRecord model;
  model.team = "alpha";
  model.name = "m.onnx";
  model.sha256 = std::string(64, 'a');
  model.size_bytes = 10;

  disk.SetFull(true);
  absl::StatusOr<JobRecord> job_on_full = (*state)->InsertJob(job);
  CHECK(job_on_full.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK((*state)->InsertModel(model).status().code() == absl::StatusCode::kResourceExhausted);
  CHECK((*state)->CreateApiKey("alpha", Role::kMember).status().code() == absl::StatusCode::kResourceExhausted);
  const int queued = kept->state;
  kept->state = 4;
  CHECK((*state)->UpdateJob(*kept).code() == absl::StatusCode::kResourceExhausted);
  disk.SetFull(false);

  // Only what was acknowledged is there, as it was; the store keeps working.
  absl::StatusOr<std::vector<JobRecord>> jobs = (*state)->ListJobs("alpha", 10);
  REQUIRE(jobs.ok());
  REQUIRE(jobs->size() == 1);
  CHECK(jobs->front().id == kept->id);
  CHECK(jobs->front().state == queued);
  CHECK((*state)->ListModels("alpha")->empty());
  CHECK(*(*state)->CountApiKeys() == 0);
  CHECK((*state)->InsertModel(model).ok());
  state->reset();
  auto reopened = StateStore::Open(dir.File("state.db"));
  REQUIRE(reopened.ok());
  CHECK((*reopened)->ListJobs("alpha", 10)->size() == 1);
  CHECK((*reopened)->ListModels("alpha")->size() == 1);
}

}  // namespace
}  // namespace squeeze::server

namespace squeeze::server {
namespace {

using Catch::Matchers::Contains;

TEST_CASE("A version-3 state.db keeps the default team's rows and gains teams and keys", "[state_store]") {
  testing::TempDir dir;
  {
    // The schema as version 3 left it, with one model and one finished job of team "default".
    auto db = common::Database::Open(dir.File("state.db"));
    REQUIRE(db.ok());
    REQUIRE(db->Exec(R"sql(
      CREATE TABLE models (id TEXT PRIMARY KEY, team TEXT NOT NULL, name TEXT NOT NULL,
        sha256 TEXT NOT NULL CHECK (length(sha256) = 64), size_bytes INTEGER NOT NULL CHECK (size_bytes > 0),
        input_shapes TEXT NOT NULL, analysis BLOB NOT NULL, created_at TEXT NOT NULL);
      CREATE TABLE sensitivities (model_sha256 TEXT NOT NULL, calibration_hash TEXT NOT NULL,
        options_key TEXT NOT NULL, report BLOB NOT NULL, created_at TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (model_sha256, calibration_hash, options_key));
      CREATE TABLE jobs (id TEXT PRIMARY KEY, team TEXT NOT NULL, model_id TEXT NOT NULL, cache_key TEXT NOT NULL,
        state INTEGER NOT NULL, phase INTEGER NOT NULL, fraction REAL NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '', spec BLOB NOT NULL, result BLOB NOT NULL DEFAULT x'',
        created_at TEXT NOT NULL, started_at TEXT NOT NULL DEFAULT '', finished_at TEXT NOT NULL DEFAULT '');
      INSERT INTO models VALUES ('m-old', 'default', 'old.onnx',
        'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 10, 'x=1', x'', '2026-01-01T00:00:00Z');
      INSERT INTO jobs (id, team, model_id, cache_key, state, phase, spec, created_at)
        VALUES ('s-old', 'default', 'm-old', 'k', 3, 7, x'', '2026-01-01T00:00:00.000Z'),
               ('s-queued', 'default', 'm-old', 'k', 1, 1, x'', '2026-01-01T00:00:01.000Z'),
               ('s-running', 'default', 'm-old', 'k', 2, 5, x'', '2026-01-01T00:00:02.000Z'),
               ('s-failed', 'default', 'm-old', 'k', 4, 3, x'', '2026-01-01T00:00:03.000Z'),
               ('s-cancelled', 'default', 'm-old', 'k', 5, 2, x'', '2026-01-01T00:00:04.000Z');
      PRAGMA user_version = 3;)sql")
                .ok());
  }
  auto state = StateStore::Open(dir.File("state.db"));
  REQUIRE(state.ok());
  CHECK(*(*state)->CountApiKeys() == 0);
  absl::StatusOr<NewApiKey> key = (*state)->CreateApiKey(kDefaultTeam, Role::kAdmin);
  REQUIRE(key.ok());
  CHECK((*state)->ListModels(kDefaultTeam)->size() == 1);
  absl::StatusOr<JobRecord> job = (*state)->GetJob(kDefaultTeam, "s-old");
  REQUIRE(job.ok());
  CHECK_FALSE(job->from_cache);
  auto db = common::Database::Open(dir.File("state.db"));
  CHECK(*db->UserVersion() == kStateSchemaVersion);
  auto teams = db->Prepare("SELECT name FROM teams");
  REQUIRE(teams.ok());
  REQUIRE(*teams->Step());
  CHECK(teams->ColumnText(0) == kDefaultTeam);
  // Job states became words (migration 0007), each job keeping its own.
  auto states = db->Prepare("SELECT id, state FROM jobs ORDER BY created_at");
  REQUIRE(states.ok());
  std::vector<std::pair<std::string, std::string>> stored;
  while (*states->Step()) stored.emplace_back(states->ColumnText("id"), states->ColumnText("state"));
  CHECK(stored == std::vector<std::pair<std::string, std::string>>{{"s-old", "succeeded"},
                                                                   {"s-queued", "queued"},
                                                                   {"s-running", "running"},
                                                                   {"s-failed", "failed"},
                                                                   {"s-cancelled", "cancelled"}});
  CHECK((*state)->GetJob(kDefaultTeam, "s-cancelled")->state == 5);
  CHECK((*state)->GetJob(kDefaultTeam, "s-cancelled")->phase == 2);  // analyzing, as stored
  auto phase = db->Prepare("SELECT phase FROM jobs WHERE id = 's-failed'");
  REQUIRE(phase.ok());
  REQUIRE(*phase->Step());
  CHECK(phase->ColumnText("phase") == "measuring sensitivity");
  absl::StatusOr<std::vector<JobRecord>> unfinished = (*state)->UnfinishedJobs();
  REQUIRE(unfinished.ok());
  REQUIRE(unfinished->size() == 2);
  CHECK((*unfinished)[0].id == "s-queued");
  CHECK((*unfinished)[1].id == "s-running");
  CHECK((*state)->FindFinishedJob(kDefaultTeam, "k")->value().id == "s-old");
  // Nothing but the five words gets in, by the store or by hand.
  JobRecord bad = *job;
  bad.state = 9;
  CHECK(absl::IsInvalidArgument((*state)->UpdateJob(bad)));
  bad.state = 3;
  bad.phase = 0;
  CHECK(absl::IsInvalidArgument((*state)->UpdateJob(bad)));
  CHECK((*state)->GetJob(kDefaultTeam, "s-old")->state == 3);
  CHECK_FALSE(db->Exec("UPDATE jobs SET state = 'done' WHERE id = 's-old'").ok());
}

TEST_CASE("API keys are stored as hashes, found by hash and stop working when revoked", "[state_store][keys]") {
  testing::TempDir dir;
  auto state = StateStore::Open(dir.File("state.db"));
  REQUIRE(state.ok());
  absl::StatusOr<NewApiKey> key = (*state)->CreateApiKey("vision", Role::kMember);
  REQUIRE(key.ok());
  CHECK(key->key.rfind("sqz_", 0) == 0);
  CHECK(key->key.size() == 4 + 64);
  CHECK(key->record.id.rfind("k-", 0) == 0);
  absl::StatusOr<ApiKeyRecord> found = (*state)->LookupApiKey(common::Sha256Hex(key->key));
  REQUIRE(found.ok());
  CHECK(found->team == "vision");
  CHECK(found->role == Role::kMember);
  CHECK((*state)->LookupApiKey(common::Sha256Hex(key->key + "x")).status().code() == absl::StatusCode::kNotFound);

  // Only the hash is on disk: the key's secret part appears in no file of the database.
  const std::string secret = key->key.substr(12);
  for (const std::string suffix : {"", "-wal"}) {
    std::ifstream in(dir.File("state.db") + suffix, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(bytes.find(secret) == std::string::npos);
  }

  CHECK((*state)->CreateApiKey("Bad Team!", Role::kMember).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK((*state)->RevokeApiKey("k-00000000").status().code() == absl::StatusCode::kNotFound);
  absl::StatusOr<ApiKeyRecord> revoked = (*state)->RevokeApiKey(key->record.id);
  REQUIRE(revoked.ok());
  CHECK_FALSE(revoked->revoked_at.empty());
  CHECK((*state)->LookupApiKey(common::Sha256Hex(key->key)).status().code() == absl::StatusCode::kNotFound);
  CHECK((*state)->RevokeApiKey(key->record.id).status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK((*state)->ListApiKeys()->size() == 1);
  CHECK(*(*state)->CountApiKeys() == 1);
}

TEST_CASE("Quotas are checked with the insert and name their limit", "[state_store][quota]") {
  testing::TempDir dir;
  auto state = StateStore::Open(dir.File("state.db"));
  REQUIRE(state.ok());
  TeamQuota quota;
  quota.max_stored_bytes = 25;
  ModelRecord model = Record("alpha", "one");
  model.size_bytes = 20;
  REQUIRE((*state)->InsertModel(model, quota).ok());
  absl::StatusOr<ModelRecord> over = (*state)->InsertModel(model, quota);
  CHECK(over.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(over.status().message()), Contains("25"));
  model.team = "beta";  // another team has its own allowance
  CHECK((*state)->InsertModel(model, quota).ok());
  CHECK(*(*state)->TeamStoredBytes("alpha") == 20);

  TeamQuota jobs;
  jobs.max_concurrent_searches = 2;
  JobRecord job;
  job.team = "alpha";
  job.model_id = "m";
  job.cache_key = "k";
  REQUIRE((*state)->InsertJob(job, jobs).ok());
  absl::StatusOr<JobRecord> second = (*state)->InsertJob(job, jobs);
  REQUIRE(second.ok());
  absl::StatusOr<JobRecord> third = (*state)->InsertJob(job, jobs);
  CHECK(third.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(third.status().message()), Contains("2 concurrent searches"));
  JobRecord cached = job;
  cached.from_cache = true;
  cached.state = 3;
  CHECK((*state)->InsertJob(cached, jobs).ok());  // answers from cache cost nothing
  second->state = 3;
  REQUIRE((*state)->UpdateJob(*second).ok());
  CHECK((*state)->InsertJob(job, jobs).ok());  // one ended: room again

  TeamQuota hourly;
  hourly.max_searches_per_hour = 3;  // alpha started 3 searches (not counting the cached one)
  absl::StatusOr<JobRecord> fourth = (*state)->InsertJob(job, hourly);
  CHECK(fourth.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(fourth.status().message()), Contains("3 searches per hour"));
  job.team = "beta";
  CHECK((*state)->InsertJob(job, hourly).ok());
  StateStore::JobCounts counts = *(*state)->CountJobs();
  CHECK(counts.queued == 3);
  CHECK(counts.succeeded == 2);
}

TEST_CASE("Exports are stored per candidate, found by key within the team, and keep their blobs", "[state_store]") {
  testing::TempDir dir;
  auto state = StateStore::Open(dir.File("state.db"));
  REQUIRE(state.ok());
  ExportRecord e;
  e.job_id = "s-1";
  e.device_id = "host";
  e.candidate = 3;
  e.cache_key = "key";
  e.blob_sha256 = std::string(64, 'a');
  e.report = "report-1";
  REQUIRE((*state)->PutExport(e).ok());
  e.candidate = 4;
  e.report = "report-2";
  REQUIRE((*state)->PutExport(e).ok());
  e.report = "report-2b";  // the same candidate again replaces its row
  REQUIRE((*state)->PutExport(e).ok());
  auto listed = (*state)->ListExports(kDefaultTeam, "s-1");
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[0].candidate == 3);
  CHECK((*listed)[1].report == "report-2b");
  auto found = (*state)->FindExport(kDefaultTeam, "key");
  REQUIRE(found.ok());
  CHECK(found->has_value());
  auto other_team = (*state)->FindExport("team-b", "key");
  REQUIRE(other_team.ok());
  CHECK_FALSE(other_team->has_value());
  CHECK((*state)->ListExports("team-b", "s-1")->empty());
  auto blobs = (*state)->ReferencedBlobs();
  REQUIRE(blobs.ok());
  CHECK(blobs->count(std::string(64, 'a')) == 1);
  e.blob_sha256 = "short";
  CHECK_FALSE((*state)->PutExport(e).ok());
}

}  // namespace
}  // namespace squeeze::server
