// squeeze-bench-arena: what squeezed's cap on ONNX Runtime's memory (--search-memory, through
// runtime::LimitRunMemory) costs in latency. Under the cap every session allocates from one shared,
// capped arena instead of an arena of its own; this times each real model (DefaultModels) both
// ways in turns (runtime::TimeInterleaved: the same inputs, rounds alternating between the two
// sessions, so the machine's drift weighs on both alike) and reports the medians and their ratio.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <vector>

#include "bench/common/bench_models.h"
#include "common/files.h"
#include "runtime/calibration.h"
#include "runtime/session.h"

namespace {

namespace runtime = squeeze::runtime;

struct Row {
  std::string label;
  double own_ms = 0, capped_ms = 0;
  double own_p90_ms = 0, capped_p90_ms = 0;
};

absl::StatusOr<Row> Measure(const squeeze::bench::ModelSpec& spec, int64_t cap, int threads,
                            const runtime::InterleavedTiming& turns) {
  absl::StatusOr<std::string> bytes = squeeze::common::ReadFile(spec.file);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<squeeze::model::AnalyzeOptions> analyze = squeeze::bench::AnalyzeOptionsFor(spec);
  if (!analyze.ok()) return analyze.status();
  absl::StatusOr<squeeze::model::LoadedModel> loaded = squeeze::model::LoadModel(*bytes, *analyze);
  if (!loaded.ok()) return loaded.status();
  runtime::SessionOptions options;
  options.intra_op_threads = threads;
  // The session made with no cap has an arena of its own; the one made under the cap, the shared one.
  runtime::LimitRunMemory(0, "");
  absl::StatusOr<std::unique_ptr<runtime::Session>> own = runtime::Session::Create(*bytes, options);
  if (!own.ok()) return own.status();
  runtime::LimitRunMemory(cap, "raise --cap");
  absl::StatusOr<std::unique_ptr<runtime::Session>> capped = runtime::Session::Create(*bytes, options);
  runtime::LimitRunMemory(0, "");
  if (!capped.ok()) return capped.status();
  absl::StatusOr<runtime::CalibrationSet> inputs =
      runtime::SyntheticCalibration(loaded->analysis, (*own)->inputs(), 1, /*seed=*/1);
  if (!inputs.ok()) return inputs.status();
  absl::StatusOr<std::vector<runtime::Timing>> timings =
      runtime::TimeInterleaved({own->get(), capped->get()}, inputs->samples.front(), turns);
  if (!timings.ok()) return timings.status();
  return Row{spec.label, (*timings)[0].median_s * 1e3, (*timings)[1].median_s * 1e3, (*timings)[0].p90_s * 1e3,
             (*timings)[1].p90_s * 1e3};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "squeeze-bench-arena: ONNX Runtime latency with squeezed's memory cap (one shared, capped arena) "
      "against its default (an arena per session), real models timed in turns"};
  int64_t cap = int64_t{3} << 30;
  int threads = 2;
  runtime::InterleavedTiming turns;
  turns.rounds = 15;
  turns.round_time_s = 0.2;
  bool json = false;
  std::vector<std::string> model_args;
  app.add_option("--cap", cap, "the cap in bytes (squeezed's --search-memory default)")->capture_default_str();
  app.add_option("--threads", threads, "ONNX Runtime threads")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--rounds", turns.rounds, "rounds of turns; each model's median is over them")
      ->capture_default_str()
      ->check(CLI::Range(3, 1000));
  app.add_option("--model", model_args, "LABEL:FILE[:INPUT=SHAPE] instead of the six default models");
  app.add_flag("--json", json, "print one JSON object");
  CLI11_PARSE(app, argc, argv);

  std::vector<squeeze::bench::ModelSpec> specs;
  for (const std::string& text : model_args) {
    absl::StatusOr<squeeze::bench::ModelSpec> spec = squeeze::bench::ParseModelSpec(text);
    if (!spec.ok()) {
      std::cerr << spec.status().message() << "\n";
      return 2;
    }
    specs.push_back(*spec);
  }
  if (specs.empty()) specs = squeeze::bench::DefaultModels(std::string(SQUEEZE_SOURCE_DIR) + "/.cache/models/");

  std::vector<Row> rows;
  for (const squeeze::bench::ModelSpec& spec : specs) {
    std::cerr << "timing " << spec.label << "...\n";
    absl::StatusOr<Row> row = Measure(spec, cap, threads, turns);
    if (!row.ok()) {
      std::cerr << spec.label << ": " << row.status().message() << "\n";
      return 1;
    }
    rows.push_back(*row);
  }
  if (json) {
    std::cout << fmt::format("{{\"onnxruntime\":\"{}\",\"threads\":{},\"rounds\":{},\"cap_bytes\":{},\"models\":[",
                             runtime::OrtVersion(), threads, turns.rounds, cap);
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::cout << fmt::format(
          "{}{{\"model\":\"{}\",\"own_arena_ms\":{:.3f},\"capped_arena_ms\":{:.3f},\"ratio\":{:.4f},"
          "\"own_arena_p90_ms\":{:.3f},\"capped_arena_p90_ms\":{:.3f}}}",
          i ? "," : "", r.label, r.own_ms, r.capped_ms, r.capped_ms / r.own_ms, r.own_p90_ms, r.capped_p90_ms);
    }
    std::cout << "]}\n";
    return 0;
  }
  std::cout << fmt::format("ONNX Runtime {}, {} threads, medians of {} rounds\n", runtime::OrtVersion(), threads,
                           turns.rounds);
  std::cout << fmt::format("{:<16}{:>14}{:>16}{:>9}\n", "model", "own arena ms", "capped arena ms", "ratio");
  for (const Row& r : rows) {
    std::cout << fmt::format("{:<16}{:>14.3f}{:>16.3f}{:>9.3f}\n", r.label, r.own_ms, r.capped_ms,
                             r.capped_ms / r.own_ms);
  }
  return 0;
}
