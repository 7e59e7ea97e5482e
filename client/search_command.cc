// squeeze search start | show | list | cancel
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/commands.h"
#include "client/fidelity_text.h"
#include "client/front_plot.h"
#include "client/progress_eta.h"
#include "client/table.h"
#include "common/files.h"
#include "squeeze/v1/search.grpc.pb.h"

namespace squeeze::client {
namespace {

const char* StateName(v1::JobState s) {
  switch (s) {
    case v1::JOB_STATE_QUEUED:
      return "queued";
    case v1::JOB_STATE_RUNNING:
      return "running";
    case v1::JOB_STATE_SUCCEEDED:
      return "succeeded";
    case v1::JOB_STATE_FAILED:
      return "failed";
    case v1::JOB_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

const char* PhaseName(v1::Phase p) {
  switch (p) {
    case v1::PHASE_QUEUED:
      return "queued";
    case v1::PHASE_ANALYZING:
      return "analyzing";
    case v1::PHASE_MEASURING_SENSITIVITY:
      return "measuring sensitivity";
    case v1::PHASE_BUILDING_TABLE:
      return "building the option table";
    case v1::PHASE_SEARCHING:
      return "searching";
    case v1::PHASE_VERIFYING:
      return "verifying";
    case v1::PHASE_DONE:
      return "done";
    default:
      return "";
  }
}

std::string Sqnr(double db) { return std::isinf(db) ? "lossless" : fmt::format("{:.1f}", db); }

bool AnyMeasured(const google::protobuf::RepeatedPtrField<v1::Candidate>& candidates) {
  for (const v1::Candidate& c : candidates) {
    if (c.has_measured()) return true;
  }
  return false;
}

// With `measured`, the figures of exported candidates beside the predictions ("-" where none).
void PrintCandidates(const google::protobuf::RepeatedPtrField<v1::Candidate>& candidates, bool measured, Table* table) {
  for (const v1::Candidate& c : candidates) {
    std::string label = c.tags().empty() ? std::to_string(c.index()) : c.tags(0);
    std::vector<std::string> row = {label, fmt::format("{:.3f}", c.predicted_latency_ms())};
    if (measured) {
      row.push_back(
          c.has_measured() && c.measured().latency_measured() ? fmt::format("{:.3f}", c.measured().latency_ms()) : "-");
    }
    row.push_back(FormatBytes(c.predicted_size_bytes()));
    row.push_back(FormatBytes(c.predicted_peak_memory_bytes()));
    row.push_back(Sqnr(c.predicted_sqnr_db()));
    if (measured) row.push_back(c.has_measured() ? Sqnr(c.measured().sqnr_db()) : "-");
    // A latency that stands partly on spec figures says so beside the plan.
    row.push_back(c.spec_layers() > 0 ? fmt::format("{} [latency: {}]", c.plan_summary(), c.latency_basis())
                                      : c.plan_summary());
    table->AddRow(std::move(row));
  }
}

// "position 2 in the queue, expected to start in about 1m30s (estimated from the time budgets
// ahead)" for a queued job; empty otherwise.
std::string QueuePlace(const v1::SearchJob& job) {
  if (job.state() != v1::JOB_STATE_QUEUED || job.queue_position() <= 0) return "";
  return fmt::format(
      "position {} in the queue, expected to start in about {} (estimated from the time budgets "
      "ahead)",
      job.queue_position(), FormatDuration(job.expected_wait_seconds()));
}

// "analyzing 0.3 s, measuring sensitivity 64.1 s, building the option table (host) 99.5 s, ...":
// each phase's measured wall time, a phase the run entered more than once (searching and
// verifying in rounds) summed, in the order they first ran; empty when the job has none.
std::string PhaseTimes(const v1::SearchJob& job) {
  std::vector<std::pair<std::string, double>> sums;
  for (const v1::PhaseTime& t : job.phase_times()) {
    const std::string name =
        std::string(PhaseName(t.phase())) + (t.device_id().empty() ? "" : " (" + t.device_id() + ")");
    auto it = std::find_if(sums.begin(), sums.end(), [&](const auto& s) { return s.first == name; });
    if (it == sums.end()) {
      sums.emplace_back(name, t.seconds());
    } else {
      it->second += t.seconds();
    }
  }
  std::string out;
  for (const auto& [name, seconds] : sums) out += fmt::format("{}{} {:.1f} s", out.empty() ? "" : ", ", name, seconds);
  return out;
}

void PrintJob(const v1::SearchJob& job, bool csv) {
  if (csv) {
    std::cout << "device,candidate,predicted_latency_ms,predicted_size_bytes,predicted_peak_memory_bytes,"
                 "predicted_sqnr_db,measured_latency_ms,measured_sqnr_db,latency_basis,plan\n";
    for (const v1::DeviceFront& f : job.fronts()) {
      for (const v1::Candidate& c : f.candidates()) {
        const bool lat = c.has_measured() && c.measured().latency_measured();
        std::cout << fmt::format("{},{},{:.6f},{},{},{:.3f},{},{},\"{}\",\"{}\"\n", f.device_id(), c.index(),
                                 c.predicted_latency_ms(), c.predicted_size_bytes(), c.predicted_peak_memory_bytes(),
                                 c.predicted_sqnr_db(), lat ? fmt::format("{:.6f}", c.measured().latency_ms()) : "",
                                 c.has_measured() ? fmt::format("{:.3f}", c.measured().sqnr_db()) : "",
                                 c.latency_basis(), c.plan_summary());
      }
    }
    return;
  }
  std::cout << fmt::format(
      "search {}  model {}  {}{}\n", job.id(), job.spec().model_id(), StateName(job.state()),
      job.state() == v1::JOB_STATE_RUNNING ? std::string(" (") + PhaseName(job.phase()) + ")" : "");
  if (!job.error().empty()) std::cout << "  error: " << job.error() << "\n";
  if (const std::string place = QueuePlace(job); !place.empty()) std::cout << "  " << place << "\n";
  if (job.from_cache()) std::cout << "  answered from an earlier search of the same model, devices and spec\n";
  if (job.synthetic_calibration()) {
    std::cout << (job.calibration_samples() > 0
                      ? fmt::format("  fidelity measured on {} synthetic samples (no calibration set was given)\n",
                                    job.calibration_samples())
                      : std::string("  fidelity measured on synthetic inputs (no calibration set was given)\n"));
  } else if (job.calibration_samples() > 0) {
    std::cout << fmt::format("  fidelity measured on {} calibration samples\n", job.calibration_samples());
  }
  if (const std::string phases = PhaseTimes(job); !phases.empty()) {
    std::cout << "  wall time by phase (measured): " << phases << "\n";
  }
  for (const v1::DeviceFront& f : job.fronts()) {
    std::cout << fmt::format("\n{} (profile v{}): {} Pareto-optimal candidates, {} search, {:.2f} s\n", f.device_id(),
                             f.device_version(), f.candidates_size(), f.strategy(), f.search_seconds());
    if (!f.latency_basis().empty()) std::cout << "  latency: " << f.latency_basis() << "\n";
    if (!f.error_outputs().empty()) std::cout << "  errors over: " << f.error_outputs() << "\n";
    if (!f.error_calibration().empty()) std::cout << "  error: " << f.error_calibration() << "\n";
    if (!f.measured_picks().empty()) std::cout << "  " << f.measured_picks() << "\n";
    if (!f.constraints_met()) {
      std::cout << "  No candidate meets the constraints. Binding: " << f.binding_constraint()
                << "\n  Closest candidates:\n";
    }
    const bool measured = AnyMeasured(f.candidates());
    Table table = measured ? Table({"#", "LATENCY ms (pred)", "LATENCY ms (meas)", "SIZE", "PEAK MEM", "SQNR dB (pred)",
                                    "SQNR dB (meas)", "PLAN"})
                           : Table({"#", "LATENCY ms (pred)", "SIZE", "PEAK MEM", "SQNR dB (pred)", "PLAN"});
    table.AlignRight(measured ? std::vector<size_t>{1, 2, 3, 4, 5, 6} : std::vector<size_t>{1, 2, 3, 4});
    PrintCandidates(f.candidates(), measured, &table);
    PrintCandidates(f.baselines(), measured, &table);
    table.Print(std::cout);
    for (const v1::Candidate& b : f.baselines()) {
      if (b.tags_size() >= 2) std::cout << "  " << b.tags(0) << ": " << b.tags(1) << "\n";
    }
    // What the pooled measured SQNR hides: each output on its own, and its task metrics.
    for (const auto* list : {&f.candidates(), &f.baselines()}) {
      for (const v1::Candidate& c : *list) {
        if (!c.has_measured() || !WorthShowing(c.measured().outputs())) continue;
        std::vector<std::string> parts;
        for (const v1::OutputFidelity& o : c.measured().outputs()) parts.push_back(OutputFigures(o));
        std::cout << fmt::format("  {} measured per output: {}\n",
                                 c.tags().empty() ? "#" + std::to_string(c.index()) : c.tags(0),
                                 absl::StrJoin(parts, "; "));
      }
    }
    for (const std::string& w : f.warnings()) std::cout << "  warning: " << w << "\n";
  }
}

int Watch(const Connection& connection, const std::string& id, bool csv) {
  auto stub = v1::SearchService::NewStub(connection.channel());
  grpc::ClientContext context;  // a watch lasts as long as the search
  connection.Authorize(context);
  v1::WatchSearchRequest request;
  request.set_id(id);
  auto reader = stub->WatchSearch(&context, request);
  v1::SearchJob job;
  const bool tty = isatty(STDERR_FILENO);
  bool any = false;
  std::string last_line;  // without a terminal, a line per phase or per 10%
  ProgressEta eta;
  while (reader->Read(&job)) {
    any = true;
    const int width = 30;
    const int done = static_cast<int>(std::lround(job.fraction() * width));
    std::string device = job.fronts().empty() ? "" : " " + job.fronts(job.fronts_size() - 1).device_id();
    const std::string phase =
        std::string(PhaseName(job.phase())) + (job.phase() >= v1::PHASE_BUILDING_TABLE ? device : "");
    std::string line = fmt::format("[{}{}] {:3.0f}% {}", std::string(done, '#'), std::string(width - done, '-'),
                                   job.fraction() * 100, phase);
    const std::optional<double> left = eta.Update(phase, job.fraction(), absl::Now());
    if (left.has_value() && job.state() == v1::JOB_STATE_RUNNING) {
      line += fmt::format(", ~{} left at this pace", FormatRemaining(*left));
    }
    if (const std::string place = QueuePlace(job); !place.empty()) line = "queued: " + place;
    if (tty) {
      std::cerr << "\r" << fmt::format("{:<100}", line) << std::flush;
    } else {
      const std::string key = fmt::format("{} {}{} {}", static_cast<int>(job.fraction() * 10), PhaseName(job.phase()),
                                          device, job.queue_position());
      if (key != last_line) std::cerr << line << "\n";
      last_line = key;
    }
  }
  if (tty && any) std::cerr << "\n";
  grpc::Status status = reader->Finish();
  if (!status.ok()) return connection.Fail(status, "search watch");
  if (connection.options().json) {
    std::cout << ToJson(job);
  } else {
    PrintJob(job, csv);
  }
  return job.state() == v1::JOB_STATE_SUCCEEDED ? 0 : 1;
}

// The floors on what exports measure, the task metrics' and each output's SQNR (0: none).
struct MeasuredFloors {
  double top1 = 0, argmax = 0, mask_iou = 0, output_sqnr_db = 0;
};

struct StartFlags {
  std::string model;
  std::vector<std::string> devices;
  double max_latency_ms = 0, max_size_mb = 0, min_sqnr_db = 0;
  MeasuredFloors floors;
  int64_t max_peak_memory_bytes = 0;
  bool within_app_budget = false;
  std::string strategy = "auto";
  std::string objectives;
  uint64_t seed = 1;
  double time_budget = 0;
  bool watch = false;
  bool csv = false;
  std::vector<std::string> calibration;
  std::vector<std::string> input_values;  // NAME=V
  std::vector<std::string> outputs;       // NAME or NAME=W
  bool verify = false;
};

// NAME=V pairs into the spec's input values. InvalidArgument naming the pair that does not parse.
absl::Status AddInputValues(const std::vector<std::string>& pairs, v1::SearchSpec* spec) {
  for (const std::string& pair : pairs) {
    const size_t eq = pair.find('=');
    double value = 0;
    if (eq == std::string::npos || eq == 0 || !absl::SimpleAtod(pair.substr(eq + 1), &value)) {
      return absl::InvalidArgumentError(
          fmt::format("--input-value '{}': expected NAME=V with V a number, e.g. sr=16000", pair));
    }
    (*spec->mutable_input_values())[pair.substr(0, eq)] = value;
  }
  return absl::OkStatus();
}

void SetMeasuredFloors(const MeasuredFloors& f, v1::Constraints* constraints) {
  constraints->set_min_top1_agreement(f.top1);
  constraints->set_min_argmax_agreement(f.argmax);
  constraints->set_min_mask_iou(f.mask_iou);
  constraints->set_min_output_sqnr_db(f.output_sqnr_db);
}

// The measured floors' flags, alike on 'search start' and 'recommend'.
void AddMeasuredFloorOptions(CLI::App* cmd, MeasuredFloors* f) {
  const char* held =
      ", held on what exports of the front measure (the error check raises the SQNR floor until they keep "
      "it; a candidate measured below it is never recommended)";
  cmd->add_option("--min-top1-agreement", f->top1,
                  std::string("Floor on the share of rows whose best class is the original's, for class-score "
                              "outputs [N, C], 0 to 1") +
                      held)
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--min-argmax-agreement", f->argmax,
                  std::string("Floor on per-position argmax agreement, for sequence-score outputs [N, T, C] "
                              "(a CTC head), 0 to 1") +
                      held)
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--min-mask-iou", f->mask_iou,
                  std::string("Floor on the IoU of thresholded single-channel masks, 0 to 1") + held)
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--min-output-sqnr", f->output_sqnr_db,
                  std::string("Floor on each counted output's own SQNR in dB: the model's SQNR is weighed over its "
                              "outputs, so a small head can sit far below it") +
                      held)
      ->check(CLI::Range(0.0, 200.0));
}

// NAME or NAME=W into output weights (SearchSpec.output_weights; a bare NAME weighs 1).
// InvalidArgument naming the one that does not parse or is named twice.
absl::Status AddOutputWeights(const std::vector<std::string>& outputs,
                              google::protobuf::Map<std::string, double>* weights) {
  for (const std::string& text : outputs) {
    const size_t eq = text.find('=');
    const std::string name = text.substr(0, eq);
    double weight = 1;
    if (name.empty() || (eq != std::string::npos &&
                         (!absl::SimpleAtod(text.substr(eq + 1), &weight) || !std::isfinite(weight) || weight < 0))) {
      return absl::InvalidArgumentError(fmt::format(
          "--output '{}': expected NAME or NAME=W with W a number >= 0, e.g. --output scores=3 --output offsets",
          text));
    }
    if (!weights->insert({name, weight}).second) {
      return absl::InvalidArgumentError(fmt::format("--output '{}' is given twice", name));
    }
  }
  return absl::OkStatus();
}

// One calibration sample per path, in the ONNX test-data layout: a directory holds the sample's
// input_N.pb files (one serialized TensorProto per model input, taken in N order), a file is
// the single input of a one-input model. The server checks names, types and shapes.
absl::Status AddCalibration(const std::vector<std::string>& paths, v1::SearchSpec* spec) {
  namespace fs = std::filesystem;
  for (const std::string& path : paths) {
    std::vector<std::string> files;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<std::pair<int, std::string>> numbered;
      for (const fs::directory_entry& e : fs::directory_iterator(path, ec)) {
        const std::string name = e.path().filename().string();
        int n = 0;
        if (std::sscanf(name.c_str(), "input_%d.pb", &n) == 1 && name == fmt::format("input_{}.pb", n)) {
          numbered.emplace_back(n, e.path().string());
        }
      }
      std::sort(numbered.begin(), numbered.end());
      for (auto& [n, file] : numbered) files.push_back(file);
      if (files.empty()) {
        return absl::InvalidArgumentError(
            fmt::format("{} holds no input_N.pb files (one serialized TensorProto per model input)", path));
      }
    } else {
      files.push_back(path);
    }
    v1::CalibrationSample* sample = spec->add_calibration();
    for (const std::string& file : files) {
      absl::StatusOr<std::string> bytes = common::ReadFile(file);
      if (!bytes.ok()) return bytes.status();
      sample->add_tensors(*std::move(bytes));
    }
  }
  return absl::OkStatus();
}

int Start(const Connection& connection, const StartFlags& f) {
  v1::SearchSpec spec;
  spec.set_model_id(f.model);
  for (const std::string& d : f.devices) spec.add_device_ids(d);
  spec.mutable_constraints()->set_max_latency_ms(f.max_latency_ms);
  spec.mutable_constraints()->set_max_model_bytes(static_cast<int64_t>(f.max_size_mb * 1e6));
  spec.mutable_constraints()->set_min_sqnr_db(f.min_sqnr_db);
  SetMeasuredFloors(f.floors, spec.mutable_constraints());
  spec.mutable_constraints()->set_max_peak_memory_bytes(f.max_peak_memory_bytes);
  spec.mutable_constraints()->set_peak_memory_within_app_budget(f.within_app_budget);
  spec.set_strategy(f.strategy == "exact"   ? v1::STRATEGY_EXACT
                    : f.strategy == "nsga2" ? v1::STRATEGY_NSGA2
                                            : v1::STRATEGY_AUTO);
  for (absl::string_view o : absl::StrSplit(f.objectives, ',', absl::SkipEmpty())) {
    if (o == "latency")
      spec.add_objectives(v1::OBJECTIVE_LATENCY);
    else if (o == "size")
      spec.add_objectives(v1::OBJECTIVE_SIZE);
    else if (o == "error" || o == "sqnr")
      spec.add_objectives(v1::OBJECTIVE_ERROR);
    else if (o == "peak-memory")
      spec.add_objectives(v1::OBJECTIVE_PEAK_MEMORY);
    else {
      std::cerr << "squeeze: unknown objective '" << o << "' (latency, size, error, peak-memory)\n";
      return 2;
    }
  }
  spec.set_seed(f.seed);
  spec.set_verify_recommended(f.verify);
  spec.set_time_budget_seconds(f.time_budget);
  if (absl::Status s = AddCalibration(f.calibration, &spec); !s.ok()) {
    std::cerr << "error: calibration: " << s.message() << "\n";
    return 2;
  }
  if (absl::Status s = AddInputValues(f.input_values, &spec); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return 2;
  }
  if (absl::Status s = AddOutputWeights(f.outputs, spec.mutable_output_weights()); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return 2;
  }
  auto stub = v1::SearchService::NewStub(connection.channel());
  v1::SearchJob job;
  grpc::Status status = stub->StartSearch(connection.NewContext().get(), spec, &job);
  if (!status.ok()) return connection.Fail(status, "search start");
  if (f.watch) return Watch(connection, job.id(), f.csv);
  if (connection.options().json) {
    std::cout << ToJson(job);
  } else {
    const std::string place = QueuePlace(job);
    std::cout << fmt::format("search {} {}{}. Follow it with 'squeeze search show {}'.\n", job.id(),
                             StateName(job.state()), place.empty() ? "" : ", " + place, job.id());
  }
  return 0;
}

int Show(const Connection& connection, const std::string& id, bool csv) {
  auto stub = v1::SearchService::NewStub(connection.channel());
  v1::GetSearchRequest request;
  request.set_id(id);
  v1::SearchJob job;
  grpc::Status status = stub->GetSearch(connection.NewContext().get(), request, &job);
  if (!status.ok()) return connection.Fail(status, "search show");
  if (connection.options().json) {
    std::cout << ToJson(job);
  } else {
    PrintJob(job, csv);
  }
  return 0;
}

int List(const Connection& connection) {
  auto stub = v1::SearchService::NewStub(connection.channel());
  v1::ListSearchesResponse response;
  grpc::Status status = stub->ListSearches(connection.NewContext().get(), v1::ListSearchesRequest(), &response);
  if (!status.ok()) return connection.Fail(status, "search list");
  if (connection.options().json) {
    std::cout << ToJson(response);
    return 0;
  }
  Table table({"ID", "MODEL", "DEVICES", "STATE", "PHASE", "CREATED"});
  for (const v1::SearchJob& j : response.jobs()) {
    table.AddRow({j.id(), j.spec().model_id(), absl::StrJoin(j.spec().device_ids(), ","), StateName(j.state()),
                  PhaseName(j.phase()), j.created_at()});
  }
  table.Print(std::cout);
  std::cout << response.jobs_size() << " searches.\n";
  return 0;
}

int Cancel(const Connection& connection, const std::string& id) {
  auto stub = v1::SearchService::NewStub(connection.channel());
  v1::CancelSearchRequest request;
  request.set_id(id);
  v1::SearchJob job;
  grpc::Status status = stub->CancelSearch(connection.NewContext().get(), request, &job);
  if (!status.ok()) return connection.Fail(status, "search cancel");
  if (connection.options().json) {
    std::cout << ToJson(job);
  } else {
    std::cout << fmt::format("search {}: {}\n", job.id(), StateName(job.state()));
  }
  return 0;
}

struct RecommendFlags {
  std::string model, device;
  double max_latency_ms = 0, max_size_mb = 0, min_sqnr_db = 0, time_budget = 0;
  MeasuredFloors floors;
  bool within_app_budget = false;
  std::vector<std::string> outputs;  // NAME or NAME=W
};

int Recommend(const Connection& connection, const RecommendFlags& f) {
  v1::RecommendRequest request;
  request.set_model_id(f.model);
  request.set_device_id(f.device);
  request.mutable_constraints()->set_max_latency_ms(f.max_latency_ms);
  request.mutable_constraints()->set_max_model_bytes(static_cast<int64_t>(f.max_size_mb * 1e6));
  request.mutable_constraints()->set_min_sqnr_db(f.min_sqnr_db);
  SetMeasuredFloors(f.floors, request.mutable_constraints());
  request.mutable_constraints()->set_peak_memory_within_app_budget(f.within_app_budget);
  request.set_time_budget_seconds(f.time_budget);
  if (absl::Status s = AddOutputWeights(f.outputs, request.mutable_output_weights()); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return 2;
  }
  auto stub = v1::SearchService::NewStub(connection.channel());
  auto context = connection.NewContext();
  // A recommendation may need a search: allow for its budget (and sensitivities) on top.
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(
                            (connection.options().timeout_s + std::max(f.time_budget, 30.0) + 180) * 1000)));
  v1::RecommendResponse response;
  if (isatty(STDERR_FILENO)) std::cerr << "asking " << connection.options().server << " (may run a search)...\n";
  grpc::Status status = stub->Recommend(context.get(), request, &response);
  if (!status.ok()) return connection.Fail(status, "recommend");
  if (connection.options().json) {
    std::cout << ToJson(response);
    return 0;
  }
  std::cout << fmt::format("{} on {}: {} (search {})\n", f.model, f.device,
                           response.from_stored_front() ? "from a stored front" : "from a search run now",
                           response.search_id());
  if (!response.constraints_met()) {
    std::cout << "No candidate meets the limits. Binding: " << response.binding_constraint() << "\n";
  }
  Table table({"PICK", "LATENCY ms (pred)", "SIZE", "SQNR dB (pred)", "PLAN"});
  table.AlignRight({1, 2, 3});
  for (const v1::Recommendation& r : response.recommendations()) {
    const v1::Candidate& c = r.candidate();
    table.AddRow({r.name(), fmt::format("{:.3f}", c.predicted_latency_ms()), FormatBytes(c.predicted_size_bytes()),
                  Sqnr(c.predicted_sqnr_db()), c.plan_summary()});
  }
  table.Print(std::cout);
  for (const v1::Recommendation& r : response.recommendations())
    std::cout << "  " << r.name() << ": " << r.why() << "\n";
  if (response.synthetic_calibration()) std::cout << "  (fidelity measured on synthetic inputs)\n";
  return 0;
}

int Plot(const Connection& connection, const std::string& id, const std::string& out_path) {
  auto stub = v1::SearchService::NewStub(connection.channel());
  v1::GetSearchRequest request;
  request.set_id(id);
  v1::SearchJob job;
  grpc::Status status = stub->GetSearch(connection.NewContext().get(), request, &job);
  if (!status.ok()) return connection.Fail(status, "search plot");
  if (job.state() != v1::JOB_STATE_SUCCEEDED) {
    std::cerr << "squeeze: search " << id << " is " << StateName(job.state())
              << "; plot it when it has succeeded ('squeeze search show " << id << "')\n";
    return 1;
  }
  // The picks come from the job's own fronts (Recommend answers from them).
  std::map<std::string, std::vector<v1::Recommendation>> picks;
  for (const v1::DeviceFront& f : job.fronts()) {
    v1::RecommendRequest ask;
    ask.set_model_id(job.spec().model_id());
    ask.set_device_id(f.device_id());
    *ask.mutable_constraints() = job.spec().constraints();
    *ask.mutable_option_space() = job.spec().option_space();
    v1::RecommendResponse answer;
    grpc::Status s = stub->Recommend(connection.NewContext().get(), ask, &answer);
    if (s.ok() && answer.constraints_met()) {
      picks[f.device_id()].assign(answer.recommendations().begin(), answer.recommendations().end());
    }
  }
  std::ofstream out(out_path);
  out << FrontPlotSvg(job, picks);
  out.close();
  if (!out) {
    std::cerr << "squeeze: cannot write " << out_path << "\n";
    return 2;
  }
  std::cout << "wrote " << out_path << " (" << job.fronts_size() << " device panels)\n";
  return 0;
}

}  // namespace

void AddRecommendCommand(CLI::App& app, const GlobalOptions& options, int* exit_code) {
  auto f = std::make_shared<RecommendFlags>();
  CLI::App* cmd = app.add_subcommand("recommend", "The best few compressions of a model for one device, explained");
  cmd->add_option("MODEL_ID", f->model, "Model id")->required();
  cmd->add_option("--device", f->device, "Device id")->required();
  cmd->add_option("--max-latency-ms", f->max_latency_ms, "Latency limit, ms");
  cmd->add_option("--max-size-mb", f->max_size_mb, "Model size limit, MB");
  cmd->add_option("--min-sqnr-db", f->min_sqnr_db, "Output SQNR floor, dB (default 10)");
  AddMeasuredFloorOptions(cmd, &f->floors);
  cmd->add_flag("--within-app-budget", f->within_app_budget, "Peak memory within the device's app budget");
  cmd->add_option("--time-budget", f->time_budget, "Seconds a new search may take (default 30)");
  cmd->add_option("--output", f->outputs,
                  "NAME or NAME=W (repeatable): the outputs that matter and their weights, as for 'search start'");
  cmd->callback([&options, exit_code, f] { *exit_code = Recommend(Connection(options), *f); });
}

void AddSearchCommands(CLI::App& app, const GlobalOptions& options, int* exit_code) {
  CLI::App* search = app.add_subcommand("search", "Search the Pareto-optimal compressions of a model per device");
  search->require_subcommand(1);

  auto f = std::make_shared<StartFlags>();
  CLI::App* start = search->add_subcommand("start", "Start a search job (returns at once; --watch follows it)");
  start->add_option("MODEL_ID", f->model, "Model id (from 'squeeze models list')")->required();
  start->add_option("--device", f->devices, "Target device id (repeatable; 'squeeze devices list')")->required();
  start->add_option("--max-latency-ms", f->max_latency_ms, "Latency limit per device, ms");
  start->add_option("--max-size-mb", f->max_size_mb, "Model size limit, MB (10^6 bytes)");
  start->add_option("--min-sqnr-db", f->min_sqnr_db, "Output SQNR floor, dB");
  AddMeasuredFloorOptions(start, &f->floors);
  start->add_option("--max-peak-memory-bytes", f->max_peak_memory_bytes, "Peak memory limit, bytes");
  start->add_flag("--within-app-budget", f->within_app_budget, "Peak memory within each device's app budget");
  start->add_option("--strategy", f->strategy, "auto, exact or nsga2")
      ->check(CLI::IsMember({"auto", "exact", "nsga2"}))
      ->capture_default_str();
  start->add_option("--objectives", f->objectives,
                    "Comma-separated: latency,size,error,peak-memory (default: latency,size,error)");
  start->add_option("--seed", f->seed, "Seed (same seed, same result)")->capture_default_str();
  start->add_option("--time-budget", f->time_budget, "Seconds the search may take (0: the server's default)");
  start->add_option("--calibration", f->calibration,
                    "A calibration sample (repeatable): a directory of input_N.pb TensorProto files, one per "
                    "model input, or one .pb file for a one-input model. Without any, fidelity is measured on "
                    "synthetic inputs");
  start->add_option("--input-value", f->input_values,
                    "NAME=V (repeatable): without --calibration, every element of input NAME takes the value V "
                    "instead of a draw from N(0, 1) (floats) or 0 (integers, bools), e.g. a sample rate sr=16000");
  start->add_option("--output", f->outputs,
                    "NAME or NAME=W (repeatable): the outputs that matter and their weights (a bare NAME weighs 1); "
                    "errors are taken over them alone. Default: every float output weighs the same, so a large "
                    "auxiliary output does not decide ('models show' lists the outputs)");
  start->add_flag("--verify", f->verify,
                  "Then export and measure each device's recommended candidates in the background "
                  "('search show' gets their measured figures)");
  start->add_flag("--watch", f->watch, "Show progress, then the fronts");
  start->add_flag("--csv", f->csv, "With --watch: print the fronts as CSV");
  start->callback([&options, exit_code, f] { *exit_code = Start(Connection(options), *f); });

  auto id = std::make_shared<std::string>();
  auto csv = std::make_shared<bool>(false);
  CLI::App* show = search->add_subcommand("show", "Show a search: state, fronts per device, baselines");
  show->add_option("JOB", *id, "Search id")->required();
  show->add_flag("--csv", *csv, "Print the fronts as CSV");
  show->callback([&options, exit_code, id, csv] { *exit_code = Show(Connection(options), *id, *csv); });

  auto out_path = std::make_shared<std::string>("front.svg");
  CLI::App* plot = search->add_subcommand("plot", "Draw a search's fronts as an SVG chart");
  plot->add_option("JOB", *id, "Search id")->required();
  plot->add_option("-o,--output", *out_path, "SVG file to write")->capture_default_str();
  plot->callback([&options, exit_code, id, out_path] { *exit_code = Plot(Connection(options), *id, *out_path); });

  CLI::App* list = search->add_subcommand("list", "List your searches");
  list->callback([&options, exit_code] { *exit_code = List(Connection(options)); });

  CLI::App* cancel = search->add_subcommand("cancel", "Cancel a queued or running search");
  cancel->add_option("JOB", *id, "Search id")->required();
  cancel->callback([&options, exit_code, id] { *exit_code = Cancel(Connection(options), *id); });
}

}  // namespace squeeze::client
