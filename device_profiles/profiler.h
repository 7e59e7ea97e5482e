// squeeze-profile's core: measures this machine into a device profile (DESIGN.md §4). Every
// OpSpec of a grid becomes a single-op model (single_op.h) timed in ONNX Runtime on pinned
// threads (warm-up, then repeats until a minimum time), whole models given by the user are timed
// as they are, and the result is a Profile (profile_file.h): the host's description
// (device_profiles/host.h) with provenance measured, capability rows derived from the samples,
// the samples, the model latencies and the conditions they were measured under.
//
// Thread safety: RunProfile may be called from any thread and leaves that thread's affinity alone
// (it measures on a thread of its own, pinned); two at once would measure each other.
#ifndef SQUEEZE_DEVICE_PROFILES_PROFILER_H_
#define SQUEEZE_DEVICE_PROFILES_PROFILER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "device_profiles/device.h"
#include "device_profiles/op_grid.h"
#include "device_profiles/profile_file.h"
#include "runtime/session.h"

namespace squeeze::device_profiles {

inline constexpr char kProfilerTool[] = "squeeze-profile";
inline constexpr char kProfilerVersion[] = "0.1.0";

// A whole model to time as it is (fp32), with the shapes of its symbolic inputs.
struct ModelToTime {
  std::string path;
  // The inputs to time it on (one tensor per model input); empty: drawn from N(0, 1), integer
  // inputs 0, at `input_shapes`.
  std::vector<runtime::Tensor> inputs;
  std::map<std::string, std::vector<int64_t>> input_shapes;
};

struct ProfileProgress {
  int done = 0;  // samples and models measured
  int total = 0;
  double elapsed_s = 0;
  double eta_s = 0;     // from the average time per item so far
  std::string current;  // the key just measured
  double drift = 1;     // slowest / fastest time of the reference op so far
};

struct ProfilerOptions {
  std::string device_id = "host";
  std::string device_name;    // empty: the host's detected name
  std::string mode = "full";  // recorded in the conditions ("quick", "full", ...)
  std::vector<OpSpec> grid;   // what to measure, e.g. ProfileGrid(kFull)
  std::vector<ModelToTime> models;
  // Also time each model's uniform variants as the exporter writes them for ONNX Runtime's CPU
  // provider (ModelLatency variants "uniform w16a32", "uniform w8a32", "uniform w8a8" and "uniform
  // w32a32 channel 50%", half its output channels pruned where they can be), in turns with the
  // model as it is: the predictor calibrates each precision of that model to the dense ones and
  // its pruned float options to the pruned one.
  bool model_variants = true;
  // The channel multiple pruning keeps in the pruned variant (model::UniformChannelPlan), as the
  // search will for this device; 0: model::ChannelAlignment for the host as detected.
  int channel_alignment = 0;
  int threads = 1;  // ONNX Runtime intra-op threads, pinned to the first CPUs allowed
  bool pin_threads = true;
  runtime::TimingOptions timing;        // per single-op sample
  runtime::TimingOptions model_timing;  // per whole model
  uint64_t seed = 1;                    // weights and inputs of the single-op models
  // The reference op (ReferenceOp) is timed before the grid, this many times through it, after it
  // and after the models; the device's derivation says how much its time moved. 0: never.
  int reference_checks = 20;
  // Called after each sample and model, on the measuring thread.
  std::function<void(const ProfileProgress&)> progress;
};

// What the machine is running at, read from the kernel where it says: cpufreq governor and
// current/max frequency of `cpu` (empty / 0 when not readable, as in many VMs; the current
// frequency then falls back to /proc/cpuinfo's "cpu MHz" for that CPU), and the hostname.
struct MachineState {
  std::string cpu_governor;
  int64_t cpu_frequency_khz = 0;
  int64_t cpu_max_frequency_khz = 0;
  std::string hostname;
};
MachineState ReadMachineState(int cpu);

// Measures everything `options` names and returns the profile; ValidateProfile passes on it.
// InvalidArgument for bad options (threads < 1, more threads to pin than CPUs allowed, a bad device id,
// a grid naming a sample twice, nothing to measure, a model input without a shape); NotFound (or
// the OS's reason) for a model file that cannot be read. A single-op model that cannot be built or
// run stops the run with that status, naming its key; a model that fails, naming its path.
absl::StatusOr<Profile> RunProfile(const ProfilerOptions& options);

// One model (`bytes`, named `name`, its SHA-256 `sha256`; `m` gives its input shapes and the path
// errors name) as it is and, with options.model_variants, its uniform exports, timed in turns on the
// calling thread with `session_options` and options.model_timing, as RunProfile times
// options.models: its ModelLatency rows. Inputs from N(0, 1) drawn with `rng`. Why the variants
// could not be exported, when they could not, goes to `notes`. Errors as RunProfile's for a model.
absl::StatusOr<std::vector<ModelLatency>> TimeModel(const ModelToTime& m, absl::string_view bytes,
                                                    const std::string& name, const std::string& sha256,
                                                    const runtime::SessionOptions& session_options,
                                                    const ProfilerOptions& options, std::mt19937_64* rng,
                                                    std::vector<std::string>* notes);

// Capability rows from measured layer samples, one per (kind, weight bits, activation bits,
// sparsity) measured, plus all-kinds rows from the conv samples: peak = the fastest sample's ops/s
// (2 per MAC; on kept weights for sparse rows), efficiency = the median sample's share of it.
// Native unless it is no faster than what it stands for: a precision against fp32 dense, a sparse
// pattern against dense at its precision (geometric mean of latency ratios over shared shapes,
// at least 1.1x needed). `kernels` maps "kind wXaY sparsity" to what ONNX Runtime ran it as, for
// the derivation text.
std::vector<Capability> MeasuredCapabilities(const std::vector<LatencySample>& samples,
                                             const std::map<std::string, std::string>& kernels,
                                             const std::string& source);

// The op RunProfile times again and again to see the machine's speed move: a 3x3 conv,
// 64 > 64 channels at 20x20, fp32 (about 0.1-0.2 ms on a desktop core).
OpSpec ReferenceOp();

// "conv w8a8 dense": the key of a sample's group in MeasuredCapabilities' `kernels`.
std::string GroupKey(OpKind kind, int weight_bits, int activation_bits, Sparsity sparsity);

}  // namespace squeeze::device_profiles

#endif  // SQUEEZE_DEVICE_PROFILES_PROFILER_H_
