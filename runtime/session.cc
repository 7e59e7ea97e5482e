#include "runtime/session.h"

#include <onnx/onnx_pb.h>
#include <onnxruntime_cxx_api.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <thread>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/loader.h"

namespace squeeze::runtime {
namespace {

// One ONNX Runtime environment per process, created on first use.
Ort::Env& Environment() {
  static Ort::Env* env = new Ort::Env(ORT_LOGGING_LEVEL_ERROR, "squeeze");
  return *env;
}

// The memory ONNX Runtime may hold for the process's runs together (LimitRunMemory). While a limit
// is set, every session allocates its tensors from ONNX Runtime's environment-wide CPU arena, made
// with that cap; when the last session using it ends, the arena is released, so what a finished
// job's runs held goes back to the system (an arena in use never shrinks: the CPU arena of
// ONNX Runtime 1.29 does not implement OrtAllocator::Shrink) and the next session gets a fresh one.
class RunMemory {
 public:
  static RunMemory& Get() {
    static RunMemory* memory = new RunMemory();
    return *memory;
  }

  void Limit(int64_t bytes, std::string how_to_raise) {
    absl::MutexLock lock(&mutex_);
    limit_ = std::max<int64_t>(0, bytes);
    how_to_raise_ = std::move(how_to_raise);
  }

  // Called before a session is made: registers the capped arena if there is none yet and counts the
  // session as its user; false when no limit is set (the session then has an arena of its own,
  // even while sessions made under an earlier limit live on).
  bool Enter() ABSL_LOCKS_EXCLUDED(mutex_) {
    absl::MutexLock lock(&mutex_);
    if (limit_ == 0) return false;
    if (registered_ == 0) {
      Ort::MemoryInfo memory("Cpu", OrtArenaAllocator, 0, OrtMemTypeDefault);
      const std::unordered_map<std::string, size_t> config{{"max_mem", static_cast<size_t>(limit_)}};
      Ort::ArenaCfg arena(config);
      Ort::ThrowOnError(Ort::GetApi().CreateAndRegisterAllocator(Environment(), memory, arena));
      registered_ = limit_;
    }
    ++users_;
    return true;
  }

  // Called after a session that Enter counted has ended.
  void Leave() ABSL_LOCKS_EXCLUDED(mutex_) {
    absl::MutexLock lock(&mutex_);
    if (--users_ > 0) return;
    Ort::MemoryInfo memory("Cpu", OrtArenaAllocator, 0, OrtMemTypeDefault);
    // Only a bug of ours could make this fail (no arena registered): then the next Enter registers
    // over it, which ONNX Runtime refuses with an error the caller sees.
    Ort::Status released(Ort::GetApi().UnregisterAllocator(Environment(), memory));
    registered_ = 0;
  }

  // What ONNX Runtime's "Available memory of A is smaller than requested bytes of R" means here.
  std::string Explain() ABSL_LOCKS_EXCLUDED(mutex_) {
    absl::MutexLock lock(&mutex_);
    if (registered_ == 0) return "the memory ONNX Runtime may hold is used up";
    return absl::StrCat("ONNX Runtime's runs in this process may hold ", model::Gibibytes(registered_),
                        " together and this run needed more", how_to_raise_.empty() ? "" : "; ", how_to_raise_);
  }

 private:
  absl::Mutex mutex_;
  int64_t limit_ ABSL_GUARDED_BY(mutex_) = 0;       // wanted; 0: none
  int64_t registered_ ABSL_GUARDED_BY(mutex_) = 0;  // the registered arena's cap; 0: none registered
  int users_ ABSL_GUARDED_BY(mutex_) = 0;           // sessions alive that allocate from it
  std::string how_to_raise_ ABSL_GUARDED_BY(mutex_);
};

// How long one run may take (LimitRunTime): a thread of its own calls SetTerminate on the
// RunOptions of every run past its deadline; ONNX Runtime then stops before its next node (a
// single kernel is not interrupted) and the run fails.
class RunWatchdog {
 public:
  static RunWatchdog& Get() {
    static RunWatchdog* watchdog = new RunWatchdog();
    return *watchdog;
  }

  void Limit(absl::Duration limit, std::string how_to_raise) {
    absl::MutexLock lock(&mutex_);
    limit_ = std::max(limit, absl::ZeroDuration());
    how_to_raise_ = std::move(how_to_raise);
    if (limit_ > absl::ZeroDuration() && !started_) {
      started_ = true;
      std::thread([this] { Loop(); }).detach();
    }
  }

  // Watches a run from now until the returned ticket is passed to Unwatch (0: no limit is set).
  int64_t Watch(Ort::RunOptions* options) ABSL_LOCKS_EXCLUDED(mutex_) {
    absl::MutexLock lock(&mutex_);
    if (limit_ <= absl::ZeroDuration()) return 0;
    const int64_t ticket = next_++;
    const absl::Time deadline = absl::Now() + limit_;
    runs_[ticket] = {deadline, options};
    // The watchdog is woken only for a deadline before it would wake anyway (a limit under its
    // one-second round), so timed runs do not each cost a thread switch.
    if (deadline < sleeping_until_) wake_ = true;
    return ticket;
  }

  void Unwatch(int64_t ticket) ABSL_LOCKS_EXCLUDED(mutex_) {
    if (ticket == 0) return;
    absl::MutexLock lock(&mutex_);
    runs_.erase(ticket);
  }

  std::string Explain() ABSL_LOCKS_EXCLUDED(mutex_) {
    absl::MutexLock lock(&mutex_);
    return absl::StrCat("an ONNX Runtime run may take ", absl::FormatDuration(limit_), " and this one took longer",
                        how_to_raise_.empty() ? "" : "; ", how_to_raise_);
  }

 private:
  void Loop() {
    absl::MutexLock lock(&mutex_);
    while (true) {
      absl::Time next = absl::Now() + absl::Seconds(1);
      for (auto it = runs_.begin(); it != runs_.end();) {
        if (it->second.first <= absl::Now()) {
          it->second.second->SetTerminate();
          it = runs_.erase(it);
        } else {
          next = std::min(next, it->second.first);
          ++it;
        }
      }
      sleeping_until_ = next;
      wake_ = false;
      mutex_.AwaitWithDeadline(absl::Condition(&wake_), next);
    }
  }

  absl::Mutex mutex_;
  absl::Duration limit_ ABSL_GUARDED_BY(mutex_) = absl::ZeroDuration();
  std::string how_to_raise_ ABSL_GUARDED_BY(mutex_);
  bool started_ ABSL_GUARDED_BY(mutex_) = false;
  std::map<int64_t, std::pair<absl::Time, Ort::RunOptions*>> runs_ ABSL_GUARDED_BY(mutex_);
  int64_t next_ ABSL_GUARDED_BY(mutex_) = 1;
  absl::Time sleeping_until_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  bool wake_ ABSL_GUARDED_BY(mutex_) = false;
};

// A run watched by the RunWatchdog while this lives.
class WatchedRun {
 public:
  explicit WatchedRun(Ort::RunOptions* options) : ticket_(RunWatchdog::Get().Watch(options)) {}
  ~WatchedRun() { RunWatchdog::Get().Unwatch(ticket_); }
  WatchedRun(const WatchedRun&) = delete;
  WatchedRun& operator=(const WatchedRun&) = delete;

 private:
  const int64_t ticket_;
};

absl::Status OrtStatus(const Ort::Exception& e, absl::string_view context) {
  std::string message = absl::StrCat(context, ": ONNX Runtime: ", e.what());
  // The arena's words when a capped arena is full, and the allocator's when the system is.
  if (absl::StrContains(e.what(), "Available memory of") && absl::StrContains(e.what(), "smaller than requested")) {
    return absl::ResourceExhaustedError(
        absl::StrCat(context, ": ", RunMemory::Get().Explain(), " (ONNX Runtime: ", e.what(), ")"));
  }
  if (absl::StrContains(e.what(), "Failed to allocate memory")) return absl::ResourceExhaustedError(message);
  if (absl::StrContains(e.what(), "terminate flag")) {
    return absl::DeadlineExceededError(absl::StrCat(context, ": ", RunWatchdog::Get().Explain()));
  }
  switch (e.GetOrtErrorCode()) {
    case ORT_INVALID_ARGUMENT:
    case ORT_INVALID_PROTOBUF:
    case ORT_INVALID_GRAPH:
    case ORT_NO_MODEL:
      return absl::InvalidArgumentError(message);
    case ORT_NO_SUCHFILE:
      return absl::NotFoundError(message);
    case ORT_NOT_IMPLEMENTED:
      return absl::UnimplementedError(message);
    default:
      return absl::FailedPreconditionError(message);
  }
}

ElementType FromOnnx(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
      return ElementType::kFloat32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16:
      return ElementType::kFloat16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
      return ElementType::kInt64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
      return ElementType::kInt32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
      return ElementType::kInt8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
      return ElementType::kUint8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL:
      return ElementType::kBool;
    default:
      return ElementType::kUnsupported;
  }
}

ONNXTensorElementDataType ToOnnx(ElementType type) {
  switch (type) {
    case ElementType::kFloat32:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case ElementType::kFloat16:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    case ElementType::kInt64:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case ElementType::kInt32:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case ElementType::kInt8:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
    case ElementType::kUint8:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
    case ElementType::kBool:
      return ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
    case ElementType::kUnsupported:
      break;
  }
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

TensorInfo Describe(const std::string& name, const Ort::TypeInfo& info) {
  TensorInfo t;
  t.name = name;
  if (info.GetONNXType() != ONNX_TYPE_TENSOR) return t;
  auto shape_info = info.GetTensorTypeAndShapeInfo();
  t.type = FromOnnx(shape_info.GetElementType());
  t.shape = shape_info.GetShape();
  std::vector<const char*> dims(t.shape.size(), nullptr);
  shape_info.GetSymbolicDimensions(dims.data(), dims.size());
  for (const char* d : dims) t.dim_names.emplace_back(d ? d : "");
  return t;
}

std::string ShapeString(const std::vector<int64_t>& shape) { return absl::StrCat("[", absl::StrJoin(shape, ","), "]"); }

// Checks `inputs` against the model's and wraps their bytes (not copied) as ONNX Runtime values,
// in the model's input order.
absl::Status InputValues(const std::vector<TensorInfo>& model_inputs, const std::vector<Tensor>& inputs,
                         std::vector<Ort::Value>* values, std::vector<const char*>* names) {
  absl::flat_hash_map<std::string, const Tensor*> by_name;
  for (const Tensor& t : inputs) by_name[t.name] = &t;
  for (const Tensor& t : inputs) {
    bool known = std::any_of(model_inputs.begin(), model_inputs.end(),
                             [&](const TensorInfo& info) { return info.name == t.name; });
    if (!known) return absl::InvalidArgumentError(absl::StrCat("the model has no input '", t.name, "'"));
  }
  Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  for (const TensorInfo& info : model_inputs) {
    auto it = by_name.find(info.name);
    if (it == by_name.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("missing input '", info.name, "' ", ElementTypeName(info.type), ShapeString(info.shape)));
    }
    const Tensor& t = *it->second;
    if (t.type != info.type) {
      return absl::InvalidArgumentError(absl::StrCat("input '", info.name, "' is ", ElementTypeName(t.type),
                                                     ", the model expects ", ElementTypeName(info.type)));
    }
    const size_t expected = static_cast<size_t>(t.ElementCount()) * ElementSize(t.type);
    if (t.bytes.size() != expected) {
      return absl::InvalidArgumentError(absl::StrCat("input '", info.name, "' has ", t.bytes.size(),
                                                     " bytes, its shape ", ShapeString(t.shape), " needs ", expected));
    }
    values->push_back(Ort::Value::CreateTensor(memory, const_cast<char*>(t.bytes.data()), t.bytes.size(),
                                               t.shape.data(), t.shape.size(), ToOnnx(t.type)));
    names->push_back(info.name.c_str());
  }
  return absl::OkStatus();
}

}  // namespace

Timing SummarizeTimes(std::vector<double> seconds) {
  Timing t;
  const int n = static_cast<int>(seconds.size());
  t.repeats = n;
  if (n == 0) return t;
  t.total_s = std::accumulate(seconds.begin(), seconds.end(), 0.0);
  t.mean_s = t.total_s / n;
  double var = 0;
  for (double s : seconds) var += (s - t.mean_s) * (s - t.mean_s);
  t.stddev_s = n > 1 ? std::sqrt(var / (n - 1)) : 0;
  std::sort(seconds.begin(), seconds.end());
  t.min_s = seconds.front();
  t.median_s = n % 2 ? seconds[n / 2] : 0.5 * (seconds[n / 2 - 1] + seconds[n / 2]);
  auto percentile = [&](double q) {
    const double rank = q * (n - 1);
    const int lo = static_cast<int>(std::floor(rank));
    const int hi = std::min(n - 1, lo + 1);
    return seconds[lo] + (rank - lo) * (seconds[hi] - seconds[lo]);
  };
  t.p10_s = percentile(0.1);
  t.p90_s = percentile(0.9);
  return t;
}

absl::string_view ElementTypeName(ElementType type) {
  switch (type) {
    case ElementType::kFloat32:
      return "float32";
    case ElementType::kFloat16:
      return "float16";
    case ElementType::kInt64:
      return "int64";
    case ElementType::kInt32:
      return "int32";
    case ElementType::kInt8:
      return "int8";
    case ElementType::kUint8:
      return "uint8";
    case ElementType::kBool:
      return "bool";
    case ElementType::kUnsupported:
      break;
  }
  return "unsupported";
}

size_t ElementSize(ElementType type) {
  switch (type) {
    case ElementType::kFloat32:
    case ElementType::kInt32:
      return 4;
    case ElementType::kFloat16:
      return 2;
    case ElementType::kInt64:
      return 8;
    case ElementType::kInt8:
    case ElementType::kUint8:
    case ElementType::kBool:
      return 1;
    case ElementType::kUnsupported:
      break;
  }
  return 0;
}

int64_t Tensor::ElementCount() const {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

absl::Span<const float> Tensor::floats() const {
  if (type != ElementType::kFloat32) return {};
  return {reinterpret_cast<const float*>(bytes.data()), bytes.size() / sizeof(float)};
}

absl::Span<float> Tensor::mutable_floats() {
  if (type != ElementType::kFloat32) return {};
  return {reinterpret_cast<float*>(bytes.data()), bytes.size() / sizeof(float)};
}

Tensor Tensor::Float(std::string name, std::vector<int64_t> shape, absl::Span<const float> values) {
  Tensor t;
  t.name = std::move(name);
  t.type = ElementType::kFloat32;
  t.shape = std::move(shape);
  t.bytes.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return t;
}

struct Session::Impl {
  ~Impl() {
    session = Ort::Session{nullptr};
    if (shared_arena) RunMemory::Get().Leave();
  }
  bool shared_arena = false;  // allocates from the capped arena of LimitRunMemory
  Ort::Session session{nullptr};
};

void LimitRunMemory(int64_t bytes, std::string how_to_raise) { RunMemory::Get().Limit(bytes, std::move(how_to_raise)); }

void LimitRunTime(absl::Duration limit, std::string how_to_raise) {
  RunWatchdog::Get().Limit(limit, std::move(how_to_raise));
}

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

absl::StatusOr<std::unique_ptr<Session>> Session::Create(absl::string_view model_bytes, const SessionOptions& options) {
  if (options.intra_op_threads < 1) {
    return absl::InvalidArgumentError("intra_op_threads must be at least 1");
  }
  std::string affinities;
  if (!options.pinned_cpus.empty()) {
    if (static_cast<int>(options.pinned_cpus.size()) != options.intra_op_threads) {
      return absl::InvalidArgumentError(absl::StrCat("pinned_cpus names ", options.pinned_cpus.size(), " CPUs for ",
                                                     options.intra_op_threads, " threads"));
    }
    for (size_t i = 0; i < options.pinned_cpus.size(); ++i) {
      if (options.pinned_cpus[i] < 0) return absl::InvalidArgumentError("pinned_cpus has a negative CPU");
      // ONNX Runtime numbers processors from 1; the calling thread is not its to pin.
      if (i > 0) absl::StrAppend(&affinities, i > 1 ? ";" : "", options.pinned_cpus[i] + 1);
    }
  }
  try {
    Ort::SessionOptions so;
    so.SetIntraOpNumThreads(options.intra_op_threads);
    so.SetInterOpNumThreads(1);
    so.SetExecutionMode(ORT_SEQUENTIAL);
    so.SetGraphOptimizationLevel(options.optimize ? GraphOptimizationLevel::ORT_ENABLE_ALL
                                                  : GraphOptimizationLevel::ORT_DISABLE_ALL);
    // Spinning threads would make a busy server's timings depend on its neighbours.
    so.AddConfigEntry("session.intra_op.allow_spinning", "0");
    if (!affinities.empty()) so.AddConfigEntry("session.intra_op_thread_affinities", affinities.c_str());
    if (!options.optimized_model_path.empty()) so.SetOptimizedModelFilePath(options.optimized_model_path.c_str());
    auto impl = std::make_unique<Impl>();
    impl->shared_arena = RunMemory::Get().Enter();
    if (impl->shared_arena) so.AddConfigEntry("session.use_env_allocators", "1");
    impl->session = Ort::Session(Environment(), model_bytes.data(), model_bytes.size(), so);
    std::unique_ptr<Session> session(new Session(std::move(impl)));
    Ort::AllocatorWithDefaultOptions allocator;
    Ort::Session& s = session->impl_->session;
    for (size_t i = 0; i < s.GetInputCount(); ++i) {
      session->inputs_.push_back(Describe(s.GetInputNameAllocated(i, allocator).get(), s.GetInputTypeInfo(i)));
    }
    for (size_t i = 0; i < s.GetOutputCount(); ++i) {
      session->outputs_.push_back(Describe(s.GetOutputNameAllocated(i, allocator).get(), s.GetOutputTypeInfo(i)));
    }
    return session;
  } catch (const Ort::Exception& e) {
    return OrtStatus(e, "cannot load the model");
  }
}

absl::StatusOr<std::vector<Tensor>> Session::Run(const std::vector<Tensor>& inputs,
                                                 const std::vector<std::string>& output_names) const {
  try {
    std::vector<Ort::Value> values;
    std::vector<const char*> names;
    if (absl::Status status = InputValues(inputs_, inputs, &values, &names); !status.ok()) return status;
    std::vector<std::string> wanted = output_names;
    if (wanted.empty()) {
      for (const TensorInfo& info : outputs_) wanted.push_back(info.name);
    }
    std::vector<const char*> out_names;
    for (const std::string& n : wanted) out_names.push_back(n.c_str());
    Ort::RunOptions run_options;
    std::vector<Ort::Value> results;
    {
      WatchedRun watched(&run_options);
      results = const_cast<Ort::Session&>(impl_->session)
                    .Run(run_options, names.data(), values.data(), values.size(), out_names.data(), out_names.size());
    }
    std::vector<Tensor> outputs;
    for (size_t i = 0; i < results.size(); ++i) {
      Tensor t;
      t.name = wanted[i];
      if (!results[i].IsTensor()) {
        return absl::UnimplementedError(absl::StrCat("output '", wanted[i], "' is not a tensor"));
      }
      auto info = results[i].GetTensorTypeAndShapeInfo();
      t.type = FromOnnx(info.GetElementType());
      t.shape = info.GetShape();
      const size_t size = info.GetElementCount() * ElementSize(t.type);
      if (t.type == ElementType::kUnsupported) {
        return absl::UnimplementedError(absl::StrCat("output '", wanted[i], "' has an unsupported element type"));
      }
      t.bytes.assign(static_cast<const char*>(results[i].GetTensorRawData()), size);
      outputs.push_back(std::move(t));
    }
    return outputs;
  } catch (const Ort::Exception& e) {
    return OrtStatus(e, "run failed");
  }
}

absl::StatusOr<Timing> Session::Time(const std::vector<Tensor>& inputs, int warmup, int repeats) const {
  if (repeats < 1) return absl::InvalidArgumentError("repeats must be at least 1");
  for (int i = 0; i < warmup; ++i) {
    absl::StatusOr<std::vector<Tensor>> out = Run(inputs);
    if (!out.ok()) return out.status();
  }
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i) {
    auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::vector<Tensor>> out = Run(inputs);
    auto end = std::chrono::steady_clock::now();
    if (!out.ok()) return out.status();
    seconds.push_back(std::chrono::duration<double>(end - start).count());
  }
  return SummarizeTimes(std::move(seconds));
}

absl::StatusOr<Timing> Session::Time(const std::vector<Tensor>& inputs, const TimingOptions& options) const {
  if (options.min_repeats < 1) return absl::InvalidArgumentError("min_repeats must be at least 1");
  if (options.max_repeats < options.min_repeats) {
    return absl::InvalidArgumentError("max_repeats must be at least min_repeats");
  }
  try {
    std::vector<Ort::Value> values;
    std::vector<const char*> names;
    if (absl::Status status = InputValues(inputs_, inputs, &values, &names); !status.ok()) return status;
    Ort::Session& session = const_cast<Ort::Session&>(impl_->session);
    Ort::IoBinding binding(session);
    for (size_t i = 0; i < values.size(); ++i) binding.BindInput(names[i], values[i]);
    // Outputs of static shape get a buffer of their own once; the others ONNX Runtime allocates.
    Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    std::vector<std::string> buffers;
    buffers.reserve(outputs_.size());
    std::vector<Ort::Value> output_values;
    for (const TensorInfo& info : outputs_) {
      const bool fixed = info.type != ElementType::kUnsupported &&
                         std::all_of(info.shape.begin(), info.shape.end(), [](int64_t d) { return d >= 0; });
      if (!fixed) {
        binding.BindOutput(info.name.c_str(), memory);
        continue;
      }
      const int64_t count =
          std::accumulate(info.shape.begin(), info.shape.end(), int64_t{1}, std::multiplies<int64_t>());
      buffers.emplace_back(static_cast<size_t>(count) * ElementSize(info.type), '\0');
      output_values.push_back(Ort::Value::CreateTensor(memory, buffers.back().data(), buffers.back().size(),
                                                       info.shape.data(), info.shape.size(), ToOnnx(info.type)));
      binding.BindOutput(info.name.c_str(), output_values.back());
    }
    Ort::RunOptions run_options;
    auto run = [&] {
      WatchedRun watched(&run_options);
      session.Run(run_options, binding);
    };
    for (int i = 0; i < options.warmup; ++i) run();
    std::vector<double> seconds;
    double total = 0;
    while (static_cast<int>(seconds.size()) < options.max_repeats &&
           (static_cast<int>(seconds.size()) < options.min_repeats || total < options.min_time_s)) {
      auto start = std::chrono::steady_clock::now();
      run();
      auto end = std::chrono::steady_clock::now();
      seconds.push_back(std::chrono::duration<double>(end - start).count());
      total += seconds.back();
    }
    return SummarizeTimes(std::move(seconds));
  } catch (const Ort::Exception& e) {
    return OrtStatus(e, "run failed");
  }
}

absl::StatusOr<std::vector<Timing>> TimeInterleaved(const std::vector<const Session*>& sessions,
                                                    const std::vector<Tensor>& inputs,
                                                    const InterleavedTiming& options) {
  if (sessions.empty()) return absl::InvalidArgumentError("no model to time");
  if (options.rounds < 1 || options.runs_per_round < 1) {
    return absl::InvalidArgumentError("rounds and runs per round must be at least 1");
  }
  if (options.warmup > 0) {
    for (const Session* s : sessions) {
      absl::StatusOr<Timing> warm = s->Time(inputs, TimingOptions{0, options.warmup, options.warmup, 0});
      if (!warm.ok()) return warm.status();
    }
  }
  const TimingOptions round{std::max(0, options.round_warmup), options.runs_per_round,
                            std::max(options.runs_per_round, 1000), std::max(0.0, options.round_time_s)};
  std::vector<std::vector<double>> medians(sessions.size());
  std::vector<double> totals(sessions.size(), 0);
  for (int r = 0; r < 10 * options.rounds; ++r) {
    const bool enough_time =
        std::all_of(totals.begin(), totals.end(), [&](double t) { return t >= options.min_time_s; });
    if (r >= options.rounds && enough_time) break;
    for (size_t k = 0; k < sessions.size(); ++k) {
      absl::StatusOr<Timing> t = sessions[k]->Time(inputs, round);
      if (!t.ok()) return t.status();
      medians[k].push_back(t->median_s);
      totals[k] += t->total_s;
    }
  }
  std::vector<Timing> out;
  for (size_t k = 0; k < sessions.size(); ++k) {
    Timing t = SummarizeTimes(medians[k]);
    t.total_s = totals[k];
    out.push_back(t);
  }
  return out;
}

std::string OrtVersion() { return Ort::GetVersionString(); }

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

absl::Status PinCurrentThread(int cpu) {
  const std::vector<int> allowed = AllowedCpus();
  if (std::find(allowed.begin(), allowed.end(), cpu) == allowed.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("CPU ", cpu, " is not one this process may run on (", absl::StrJoin(allowed, ","), ")"));
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  const int error = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  if (error != 0) {
    return absl::InternalError(absl::StrCat("cannot pin the thread to CPU ", cpu, ": ", std::strerror(error)));
  }
  return absl::OkStatus();
}

int64_t MaxLoadableIrVersion() {
  static const int64_t newest = [] {
    // y = Identity(x) over float[1], opset 13, at rising IR versions until one does not load.
    onnx::ModelProto m;
    onnx::OperatorSetIdProto* opset = m.add_opset_import();
    opset->set_domain("");
    opset->set_version(13);
    onnx::GraphProto* g = m.mutable_graph();
    g->set_name("ir_probe");
    onnx::NodeProto* n = g->add_node();
    n->set_op_type("Identity");
    n->add_input("x");
    n->add_output("y");
    for (const char* name : {"x", "y"}) {
      onnx::ValueInfoProto* v = name[0] == 'x' ? g->add_input() : g->add_output();
      v->set_name(name);
      v->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
      v->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(1);
    }
    int64_t loads = 0;
    for (int64_t ir = 7; ir <= 64; ++ir) {
      m.set_ir_version(ir);
      if (!Session::Create(m.SerializeAsString()).ok()) break;
      loads = ir;
    }
    return loads;
  }();
  return newest;
}

}  // namespace squeeze::runtime
