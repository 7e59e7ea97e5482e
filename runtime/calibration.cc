#include "runtime/calibration.h"

#include <onnx/onnx_pb.h>

#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/sha256.h"
#include "model/weights.h"

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

}  // namespace

absl::StatusOr<CalibrationSet> SyntheticCalibration(const model::Analysis& analysis,
                                                    const std::vector<TensorInfo>& inputs, int count, uint64_t seed) {
  if (count < 1) return absl::InvalidArgumentError("at least one calibration sample is needed");
  CalibrationSet set;
  set.synthetic = true;
  for (int k = 0; k < count; ++k) {
    std::mt19937_64 rng(seed * 1000003 + static_cast<uint64_t>(k));
    std::normal_distribution<float> normal(0.f, 1.f);
    std::vector<Tensor> sample;
    for (const TensorInfo& input : inputs) {
      Tensor t;
      t.name = input.name;
      t.type = input.type;
      t.shape = ShapeOf(analysis, input);
      for (int64_t d : t.shape) {
        if (d < 1) {
          return absl::InvalidArgumentError(absl::StrCat("input '", input.name, "' has no concrete shape"));
        }
      }
      const size_t size = ElementSize(t.type);
      if (size == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("input '", input.name, "' has an element type calibration cannot draw"));
      }
      t.bytes.assign(static_cast<size_t>(t.ElementCount()) * size, '\0');
      if (t.type == ElementType::kFloat32) {
        for (float& v : t.mutable_floats()) v = normal(rng);
      } else if (t.type == ElementType::kFloat16) {
        uint16_t* halves = reinterpret_cast<uint16_t*>(t.bytes.data());
        for (int64_t i = 0; i < t.ElementCount(); ++i) halves[i] = model::FloatToHalfBits(normal(rng));
      }  // integer and bool inputs stay 0
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
      if (filled[slot]) {
        return absl::InvalidArgumentError(
            absl::StrCat("calibration sample ", k, " gives input '", inputs[slot].name, "' twice"));
      }
      const TensorInfo& input = inputs[slot];
      const std::vector<int64_t> want = ShapeOf(analysis, input);
      const std::vector<int64_t> got(proto.dims().begin(), proto.dims().end());
      if (got != want) {
        return absl::InvalidArgumentError(absl::StrCat("calibration sample ", k, ", input '", input.name,
                                                       "': shape [", absl::StrJoin(got, ","),
                                                       "] but the model was analysed at [", absl::StrJoin(want, ","),
                                                       "]"));
      }
      if (input.type != ElementType::kFloat32) {
        return absl::InvalidArgumentError(absl::StrCat("calibration sample ", k, ", input '", input.name, "' is ",
                                                       ElementTypeName(input.type),
                                                       "; calibration takes float inputs only"));
      }
      absl::StatusOr<std::vector<float>> values = model::DecodeFloatTensor(proto, input.name);
      if (!values.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("calibration sample ", k, ": ", values.status().message()));
      }
      Tensor t = Tensor::Float(input.name, got, *values);
      sample[slot] = std::move(t);
      filled[slot] = true;
    }
    set.samples.push_back(std::move(sample));
  }
  set.hash = HashSamples(set.samples, false);
  return set;
}

}  // namespace squeeze::runtime
