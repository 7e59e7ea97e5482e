#include "runtime/calibration.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/sha256.h"
#include "model/image_tensor.h"
#include "model/internal/tensor_data.h"
#include "model/weight_math.h"

namespace squeeze::runtime {
namespace {

std::string HashSamples(const std::vector<std::vector<Tensor>>& samples, bool synthetic) {
  common::Sha256 hash;
  hash.Update(synthetic ? "synthetic|" : "uploaded|");
  for (const std::vector<Tensor>& sample : samples) {
    for (const Tensor& t : sample) {
      hash.Update(absl::StrCat(t.name, "|", ElementTypeName(t.type), "|", absl::StrJoin(t.shape, ","), "|"));
      hash.Update(t.bytes);
    }
    hash.Update("#");
  }
  return hash.HexDigest();
}

// The concrete shape of an input: the analysis' (which resolved symbolic dims).
std::vector<int64_t> ShapeOf(const model::Analysis& analysis, const TensorInfo& input) {
  auto it = analysis.input_shapes.find(input.name);
  return it != analysis.input_shapes.end() ? it->second : input.shape;
}

int32_t OnnxType(ElementType type) {
  switch (type) {
    case ElementType::kFloat32:
      return onnx::TensorProto::FLOAT;
    case ElementType::kFloat16:
      return onnx::TensorProto::FLOAT16;
    case ElementType::kInt64:
      return onnx::TensorProto::INT64;
    case ElementType::kInt32:
      return onnx::TensorProto::INT32;
    case ElementType::kInt8:
      return onnx::TensorProto::INT8;
    case ElementType::kUint8:
      return onnx::TensorProto::UINT8;
    case ElementType::kBool:
      return onnx::TensorProto::BOOL;
    case ElementType::kUnsupported:
      break;
  }
  return onnx::TensorProto::UNDEFINED;
}

// A checked TensorProto's values as a Tensor's little-endian bytes at `type`'s element size.
std::string TensorBytes(const onnx::TensorProto& proto, ElementType type, int64_t count) {
  if (!proto.raw_data().empty() || count == 0) return proto.raw_data();
  std::string bytes(static_cast<size_t>(count) * ElementSize(type), '\0');
  char* out = bytes.data();
  for (int64_t i = 0; i < count; ++i) {
    switch (type) {
      case ElementType::kFloat32: {
        const float v = proto.float_data(static_cast<int>(i));
        std::memcpy(out + i * 4, &v, 4);
        break;
      }
      case ElementType::kInt64: {
        const int64_t v = proto.int64_data(static_cast<int>(i));
        std::memcpy(out + i * 8, &v, 8);
        break;
      }
      case ElementType::kInt32: {
        const int32_t v = proto.int32_data(static_cast<int>(i));
        std::memcpy(out + i * 4, &v, 4);
        break;
      }
      case ElementType::kFloat16: {
        const uint16_t v = static_cast<uint16_t>(proto.int32_data(static_cast<int>(i)));
        std::memcpy(out + i * 2, &v, 2);
        break;
      }
      case ElementType::kInt8:
      case ElementType::kUint8:
      case ElementType::kBool:
        out[i] = static_cast<char>(proto.int32_data(static_cast<int>(i)));
        break;
      case ElementType::kUnsupported:
        break;
    }
  }
  return bytes;
}

}  // namespace

uint64_t DeriveSeed(uint64_t seed, uint64_t index) {
  // SplitMix64 (Steele, Lea, Flood 2014) over the seed, then over the index mixed in.
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  return mix(mix(seed) ^ index);
}

absl::StatusOr<CalibrationSet> CalibrationFromImages(const model::Analysis& analysis,
                                                     const std::vector<TensorInfo>& inputs,
                                                     const std::vector<std::string>& image_paths) {
  if (inputs.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("images calibrate a model with one image input; this one has ", inputs.size()));
  }
  model::ImageTensorOptions options;  // ImageNet's mean and std: the defaults
  options.input = inputs.front().name;
  options.shape = ShapeOf(analysis, inputs.front());
  std::vector<std::vector<std::string>> files;
  for (const std::string& path : image_paths) {
    absl::StatusOr<std::string> bytes = common::ReadFile(path);
    if (!bytes.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", bytes.status().message()));
    absl::StatusOr<onnx::TensorProto> tensor = model::ImageToTensor(*bytes, options);
    if (!tensor.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", tensor.status().message()));
    files.push_back({tensor->SerializeAsString()});
  }
  return CalibrationFromTensorProtos(analysis, inputs, files);
}

std::vector<float> StandardNormal(uint64_t seed, size_t count) {
  std::mt19937_64 rng(seed);
  // Uniform in (0, 1] from the top 53 bits, so the logarithm is finite.
  auto uniform = [&rng] { return (static_cast<double>(rng() >> 11) + 1.0) * 0x1.0p-53; };
  std::vector<float> out(count);
  for (size_t i = 0; i < count; i += 2) {
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double theta = 2.0 * M_PI * uniform();
    out[i] = static_cast<float>(r * std::cos(theta));
    if (i + 1 < count) out[i + 1] = static_cast<float>(r * std::sin(theta));
  }
  return out;
}

namespace {

// `count` ids uniform in [0, bound), as int64 or int32 elements, from `seed` (mt19937_64 modulo
// the bound, the same on every platform; its bias is below bound / 2^64).
std::string UniformIds(uint64_t seed, size_t count, int64_t bound, ElementType type) {
  std::mt19937_64 rng(seed);
  std::string bytes;
  bytes.reserve(count * ElementSize(type));
  for (size_t i = 0; i < count; ++i) {
    const int64_t id = static_cast<int64_t>(rng() % static_cast<uint64_t>(bound));
    if (type == ElementType::kInt64) {
      bytes.append(reinterpret_cast<const char*>(&id), sizeof(id));
    } else {
      const int32_t narrow = static_cast<int32_t>(id);
      bytes.append(reinterpret_cast<const char*>(&narrow), sizeof(narrow));
    }
  }
  return bytes;
}

// One element of `input` holding `value`, as its bytes. InvalidArgument for a value its type
// cannot hold.
absl::StatusOr<std::string> ElementBytes(const TensorInfo& input, double value) {
  auto refuse = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("the value ", value, " for input '", input.name, "' (", ElementTypeName(input.type), "): ", why));
  };
  if (!std::isfinite(value)) return refuse("not a finite number");
  auto bytes_of = [](auto v) { return std::string(reinterpret_cast<const char*>(&v), sizeof(v)); };
  auto whole = [&](double lo, double hi) -> absl::Status {
    if (value != std::floor(value)) return refuse("an integer input takes whole numbers");
    if (value < lo || value > hi) return refuse(absl::StrCat("outside its type's range [", lo, ", ", hi, "]"));
    return absl::OkStatus();
  };
  switch (input.type) {
    case ElementType::kFloat32:
      return bytes_of(static_cast<float>(value));
    case ElementType::kFloat16:
      return bytes_of(model::FloatToHalfBits(static_cast<float>(value)));
    case ElementType::kInt64:
      if (absl::Status s = whole(-9007199254740992.0, 9007199254740992.0); !s.ok()) return s;
      return bytes_of(static_cast<int64_t>(value));
    case ElementType::kInt32:
      if (absl::Status s = whole(-2147483648.0, 2147483647.0); !s.ok()) return s;
      return bytes_of(static_cast<int32_t>(value));
    case ElementType::kInt8:
      if (absl::Status s = whole(-128, 127); !s.ok()) return s;
      return bytes_of(static_cast<int8_t>(value));
    case ElementType::kUint8:
      if (absl::Status s = whole(0, 255); !s.ok()) return s;
      return bytes_of(static_cast<uint8_t>(value));
    case ElementType::kBool:
      if (value != 0 && value != 1) return refuse("a bool input takes 0 or 1");
      return bytes_of(static_cast<uint8_t>(value));
    case ElementType::kUnsupported:
      break;
  }
  return refuse("calibration cannot feed this type");
}

}  // namespace

absl::StatusOr<CalibrationSet> SyntheticCalibration(const model::Analysis& analysis,
                                                    const std::vector<TensorInfo>& inputs, int count, uint64_t seed,
                                                    const std::map<std::string, double>& values) {
  if (count < 1) return absl::InvalidArgumentError("at least one calibration sample is needed");
  std::map<std::string, std::string> given;  // input name -> one element's bytes
  for (const auto& [given_name, value] : values) {
    const std::string& name = given_name;  // a lambda cannot capture a structured binding in C++17
    auto input = std::find_if(inputs.begin(), inputs.end(), [&](const TensorInfo& i) { return i.name == name; });
    if (input == inputs.end()) {
      std::vector<std::string> names;
      for (const TensorInfo& i : inputs) names.push_back(absl::StrCat("'", i.name, "'"));
      return absl::InvalidArgumentError(absl::StrCat("an input value names '", name,
                                                     "', which is no input of the model; its inputs are ",
                                                     absl::StrJoin(names, ", ")));
    }
    absl::StatusOr<std::string> element = ElementBytes(*input, value);
    if (!element.ok()) return element.status();
    given[name] = *std::move(element);
  }
  CalibrationSet set;
  set.synthetic = true;
  set.input_values = values;
  for (int k = 0; k < count; ++k) {
    std::vector<Tensor> sample;
    for (size_t j = 0; j < inputs.size(); ++j) {
      const TensorInfo& input = inputs[j];
      Tensor t;
      t.name = input.name;
      t.type = input.type;
      t.shape = ShapeOf(analysis, input);
      for (int64_t d : t.shape) {
        if (d < 0) {
          return absl::InvalidArgumentError(absl::StrCat("input '", input.name, "' has no concrete shape"));
        }
      }
      const size_t size = ElementSize(t.type);
      if (size == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("input '", input.name, "' has an element type calibration cannot draw"));
      }
      const size_t n = static_cast<size_t>(t.ElementCount());
      t.bytes.assign(n * size, '\0');
      if (auto value = given.find(t.name); value != given.end()) {
        for (size_t i = 0; i < n; ++i) std::memcpy(&t.bytes[i * size], value->second.data(), size);
      } else if (t.type == ElementType::kFloat32 || t.type == ElementType::kFloat16) {
        const std::vector<float> draws = StandardNormal(DeriveSeed(DeriveSeed(seed, k), j), n);
        if (t.type == ElementType::kFloat32) {
          std::memcpy(t.bytes.data(), draws.data(), n * sizeof(float));
        } else {
          for (size_t i = 0; i < n; ++i) {
            const uint16_t half = model::FloatToHalfBits(draws[i]);
            std::memcpy(&t.bytes[i * 2], &half, 2);
          }
        }
      } else if (auto bound = analysis.index_input_bounds.find(t.name);
                 bound != analysis.index_input_bounds.end() &&
                 (t.type == ElementType::kInt64 ||
                  (t.type == ElementType::kInt32 && bound->second <= std::numeric_limits<int32_t>::max()))) {
        t.bytes = UniformIds(DeriveSeed(DeriveSeed(seed, k), j), n, bound->second, t.type);
      }  // other integer and bool inputs stay 0
      sample.push_back(std::move(t));
    }
    set.samples.push_back(std::move(sample));
  }
  set.hash = HashSamples(set.samples, true);
  return set;
}

absl::StatusOr<CalibrationSet> CalibrationFromTensorProtos(const model::Analysis& analysis,
                                                           const std::vector<TensorInfo>& inputs,
                                                           const std::vector<std::vector<std::string>>& files) {
  if (files.empty()) return absl::InvalidArgumentError("the calibration set has no samples");
  CalibrationSet set;
  for (size_t k = 0; k < files.size(); ++k) {
    if (files[k].size() != inputs.size()) {
      return absl::InvalidArgumentError(absl::StrCat("calibration sample ", k, " has ", files[k].size(),
                                                     " tensors; the model has ", inputs.size(), " inputs"));
    }
    std::vector<Tensor> sample(inputs.size());
    std::vector<bool> filled(inputs.size(), false);
    for (size_t j = 0; j < files[k].size(); ++j) {
      onnx::TensorProto proto;
      if (!proto.ParseFromString(files[k][j])) {
        return absl::InvalidArgumentError(
            absl::StrCat("calibration sample ", k, ", tensor ", j, " is not an ONNX TensorProto (input_N.pb)"));
      }
      size_t slot = j;
      if (!proto.name().empty()) {
        slot = inputs.size();
        for (size_t i = 0; i < inputs.size(); ++i) {
          if (inputs[i].name == proto.name()) slot = i;
        }
        if (slot == inputs.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("calibration sample ", k, ": the model has no input '", proto.name(), "'"));
        }
      }
      const TensorInfo& input = inputs[slot];
      const std::string what = absl::StrCat("calibration sample ", k, ", input '", input.name, "'");
      if (filled[slot]) return absl::InvalidArgumentError(absl::StrCat(what, " is given twice"));
      if (proto.data_type() != OnnxType(input.type) || OnnxType(input.type) == onnx::TensorProto::UNDEFINED) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": ", model::internal::DataTypeName(proto.data_type()),
                                                       " data, the model takes ", ElementTypeName(input.type)));
      }
      const std::vector<int64_t> want = ShapeOf(analysis, input);
      const std::vector<int64_t> got(proto.dims().begin(), proto.dims().end());
      if (got != want) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": shape [", absl::StrJoin(got, ","),
                                                       "] but the model was analysed at [", absl::StrJoin(want, ","),
                                                       "]"));
      }
      if (absl::Status s = model::internal::CheckTensorData(proto, input.name); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("calibration sample ", k, ": ", s.message()));
      }
      Tensor t;
      t.name = input.name;
      t.type = input.type;
      t.shape = got;
      t.bytes = TensorBytes(proto, input.type, t.ElementCount());
      sample[slot] = std::move(t);
      filled[slot] = true;
    }
    set.samples.push_back(std::move(sample));
  }
  set.hash = HashSamples(set.samples, false);
  return set;
}

absl::StatusOr<int> SyntheticSampleCount(const model::Analysis& analysis, const Session& original, int least,
                                         uint64_t seed, const std::map<std::string, double>& values) {
  if (least >= kMostSyntheticSamples) return least;
  absl::StatusOr<CalibrationSet> one = SyntheticCalibration(analysis, original.inputs(), 1, seed, values);
  if (!one.ok()) return one.status();
  absl::StatusOr<std::vector<Tensor>> out = original.Run(one->samples[0]);
  if (!out.ok()) return least;
  int64_t fewest = 0;
  for (const Tensor& t : *out) {
    if (t.type != ElementType::kFloat32 && t.type != ElementType::kFloat16) continue;
    const int64_t n = t.ElementCount();
    if (n > 0 && (fewest == 0 || n < fewest)) fewest = n;
  }
  if (fewest == 0) return least;
  const int64_t needed = (kLeastOutputValues + fewest - 1) / fewest;
  return static_cast<int>(std::clamp<int64_t>(needed, least, kMostSyntheticSamples));
}

absl::Status CheckModelRunsOn(const Session& original, const CalibrationSet& set) {
  for (size_t k = 0; k < set.samples.size(); ++k) {
    absl::StatusOr<std::vector<Tensor>> out = original.Run(set.samples[k]);
    if (out.ok()) continue;
    // Out of memory or time is not about the inputs: other inputs would not help.
    if (absl::IsResourceExhausted(out.status()) || absl::IsDeadlineExceeded(out.status())) return out.status();
    std::string how;
    if (set.synthetic) {
      std::vector<std::string> zeros, given;
      for (const Tensor& t : set.samples[k]) {
        if (auto v = set.input_values.find(t.name); v != set.input_values.end()) {
          given.push_back(absl::StrCat("'", t.name, "' = ", v->second));
        } else if (t.type != ElementType::kFloat32 && t.type != ElementType::kFloat16) {
          zeros.push_back(absl::StrCat("'", t.name, "' (", ElementTypeName(t.type), ")"));
        }
      }
      how = absl::StrCat("synthetic inputs (floats from N(0, 1)",
                         zeros.empty() ? "" : absl::StrCat("; zeros for ", absl::StrJoin(zeros, ", ")),
                         given.empty() ? "" : absl::StrCat("; ", absl::StrJoin(given, ", ")), ")");
    } else {
      how = absl::StrCat("uploaded calibration sample ", k + 1, " of ", set.samples.size());
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "the model as uploaded (before any compression) does not run on ", how, ": ", out.status().message(),
        ". Give inputs it runs on with --calibration DIR (input_N.pb TensorProto files, e.g. from "
        "'squeeze calibration from-image')",
        set.synthetic ? ", or give an input the value it expects with --input-value NAME=V (e.g. a sample rate)" : "",
        "."));
  }
  return absl::OkStatus();
}

}  // namespace squeeze::runtime
