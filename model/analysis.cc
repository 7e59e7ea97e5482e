#include "model/analysis.h"

namespace squeeze::model {

const char* ShapeSourceName(ShapeSource source) {
  switch (source) {
    case ShapeSource::kDeclared:
      return "declared";
    case ShapeSource::kInferred:
      return "inferred";
    case ShapeSource::kOnnxRuntime:
      return "onnxruntime";
    case ShapeSource::kUnknown:
      break;
  }
  return "unknown";
}

const char* WeightStorageName(WeightStorage storage) {
  switch (storage) {
    case WeightStorage::kInitializer:
      return "initializer";
    case WeightStorage::kConstantNode:
      return "constant_node";
  }
  return "initializer";
}

}  // namespace squeeze::model
