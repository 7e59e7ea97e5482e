// ONNX Runtime sessions for real runs: from model bytes in memory, with an explicit thread count,
// on named inputs, timed with warm-up and repeats. Every ONNX Runtime error comes back as an
// absl::Status carrying its message; no exception leaves this library.
//
// Thread safety: a Session may be Run from several threads at once (ONNX Runtime's guarantee).
#ifndef SQUEEZE_RUNTIME_SESSION_H_
#define SQUEEZE_RUNTIME_SESSION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace squeeze::runtime {

enum class ElementType { kUnsupported, kFloat32, kFloat16, kInt64, kInt32, kInt8, kUint8, kBool };

absl::string_view ElementTypeName(ElementType type);
size_t ElementSize(ElementType type);

// A dense tensor: shape, element type and the raw little-endian bytes.
struct Tensor {
  std::string name;
  ElementType type = ElementType::kFloat32;
  std::vector<int64_t> shape;
  std::string bytes;

  int64_t ElementCount() const;
  // Views of the values; empty when the type differs.
  absl::Span<const float> floats() const;
  absl::Span<float> mutable_floats();

  static Tensor Float(std::string name, std::vector<int64_t> shape, absl::Span<const float> values);
};

// A graph input or output as the session sees it. Symbolic dimensions are -1, named in dim_names.
struct TensorInfo {
  std::string name;
  ElementType type = ElementType::kUnsupported;
  std::vector<int64_t> shape;
  std::vector<std::string> dim_names;
};

struct SessionOptions {
  int intra_op_threads = 1;  // pinned, so timings are comparable
  bool optimize = true;      // ONNX Runtime's full graph optimizations (fusions, QDQ to integer ops)
  // When set, ONNX Runtime writes the model as it will run it (after its optimizations) there:
  // how to see whether QDQ nodes became integer kernels.
  std::string optimized_model_path;
  // CPUs (as the OS numbers them) to pin the threads that run the model to, one per intra-op
  // thread: the first is the calling thread's (pin it with PinCurrentThread; ONNX Runtime does not
  // touch the caller), the others go to ONNX Runtime's pool threads
  // ("session.intra_op_thread_affinities"). Empty: not pinned.
  std::vector<int> pinned_cpus;
};

struct Timing {
  double median_s = 0;
  double mean_s = 0;
  double stddev_s = 0;
  double min_s = 0;
  double p10_s = 0;  // 10th and 90th percentiles (linear interpolation between ranks)
  double p90_s = 0;
  double total_s = 0;  // the timed runs together
  int repeats = 0;
};

// How Session::Time repeats a run.
struct TimingOptions {
  int warmup = 1;          // runs discarded first
  int min_repeats = 5;     // timed runs, at least
  int max_repeats = 1000;  // and at most
  // Timed runs go on past min_repeats until they add up to this (or max_repeats is reached), so a
  // fast op is measured over enough runs to see past the clock and the scheduler.
  double min_time_s = 0;
};

class Session {
 public:
  // Loads a model from its serialized bytes. InvalidArgument when ONNX Runtime rejects the model
  // (with its reason), Unimplemented for ops it has no kernel for.
  static absl::StatusOr<std::unique_ptr<Session>> Create(absl::string_view model_bytes,
                                                         const SessionOptions& options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::vector<TensorInfo>& inputs() const { return inputs_; }
  const std::vector<TensorInfo>& outputs() const { return outputs_; }

  // Runs on `inputs` (matched by name) and returns `output_names` (all outputs when empty), in
  // that order. InvalidArgument for a missing, unknown or mis-shaped input.
  absl::StatusOr<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs,
                                          const std::vector<std::string>& output_names = {}) const;

  // Times Run: `warmup` runs discarded, then `repeats` timed runs.
  absl::StatusOr<Timing> Time(const std::vector<Tensor>& inputs, int warmup, int repeats) const;

  // Times the model alone: inputs are bound once and outputs are written to buffers allocated
  // once (ONNX Runtime's allocator for outputs of symbolic shape) and never copied out, so a run
  // costs what the model costs. InvalidArgument as Run for bad inputs, and for min_repeats < 1 or
  // max_repeats < min_repeats.
  absl::StatusOr<Timing> Time(const std::vector<Tensor>& inputs, const TimingOptions& options) const;

 private:
  struct Impl;
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::vector<TensorInfo> inputs_;
  std::vector<TensorInfo> outputs_;
};

// Caps the memory ONNX Runtime may hold for all the sessions of this process together (`bytes` <= 0:
// no cap, ONNX Runtime's default of an arena per session, for the sessions made from now on). A new
// cap takes effect from the next session made while none made under the old one is alive. Their tensors — initializers,
// inputs, intermediate values, outputs — then come from one shared arena of that size, released whenever the last
// session using it ends; a session or run that would pass it fails with ResourceExhausted saying so and ending with
// `how_to_raise` (e.g. the server flag that sets it). What ONNX Runtime allocates outside its allocators (thread
// stacks, some kernels' scratch) is not counted.
void LimitRunMemory(int64_t bytes, std::string how_to_raise);

// The longest one run (Session::Run, or one timed run of Session::Time) may take, from now on
// (<= 0: no limit). A run past it is stopped by ONNX Runtime before its next node and fails with
// DeadlineExceeded ending with `how_to_raise`; a single kernel is not interrupted.
void LimitRunTime(absl::Duration limit, std::string how_to_raise);

// Median, mean, spread, percentiles and total of run times (seconds).
Timing SummarizeTimes(std::vector<double> seconds);

// How TimeInterleaved takes turns.
// The newest ONNX IR version this build's ONNX Runtime loads, found once by loading a one-node
// model at rising IR versions (ONNX Runtime publishes no such constant).
int64_t MaxLoadableIrVersion();

struct InterleavedTiming {
  int warmup = 2;           // runs of each model discarded first
  int rounds = 7;           // in each round every model runs in turn:
  int round_warmup = 1;     //   this many runs discarded (the caches the other models cooled),
  int runs_per_round = 1;   //   then at least this many timed,
  double round_time_s = 0;  //   repeated until they add up to this
  // Rounds go on past `rounds` until each model has run this long (at most 10 x rounds).
  double min_time_s = 0;
};

// Times `sessions` on the same inputs (bound as Session::Time binds them), one after another round
// by round, so a machine whose speed drifts weighs on every model alike, each warm within its
// round as a model run again and again is. Each Timing summarizes the per-round medians of one
// session (repeats = rounds; total_s = all its timed runs).
// InvalidArgument for no session, rounds or runs_per_round below 1, and as Session::Time.
absl::StatusOr<std::vector<Timing>> TimeInterleaved(const std::vector<const Session*>& sessions,
                                                    const std::vector<Tensor>& inputs,
                                                    const InterleavedTiming& options);

// The linked ONNX Runtime's version, e.g. "1.29.0".
std::string OrtVersion();

// The CPUs this process may run on (its affinity mask), ascending.
std::vector<int> AllowedCpus();

// Pins the calling thread to `cpu`. InvalidArgument for a CPU outside AllowedCpus(), else the OS's
// error.
absl::Status PinCurrentThread(int cpu);

}  // namespace squeeze::runtime

#endif  // SQUEEZE_RUNTIME_SESSION_H_
