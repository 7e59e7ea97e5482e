// Reading a model's inner values on its inputs: the main-graph values a calibration needs (an
// activation's range, the rows a layer reads), graph inputs taken from each sample and the rest
// exposed as graph outputs (model::ExposeValues) of one session.
//
// Thread safe once made: Read builds nothing.
#ifndef SQUEEZE_RUNTIME_VALUE_READER_H_
#define SQUEEZE_RUNTIME_VALUE_READER_H_

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/loader.h"
#include "runtime/session.h"

namespace squeeze::runtime {

class ValueReader {
 public:
  // A reader of `names` (main-graph values: graph inputs or node outputs) with `threads` ONNX
  // Runtime intra-op threads. InvalidArgument naming a value the main graph neither takes nor
  // computes; ONNX Runtime's refusals come back with its message.
  static absl::StatusOr<ValueReader> Create(const model::LoadedModel& model, const std::vector<std::string>& names,
                                            int threads);

  // The values on one sample (its tensors matched to the graph inputs by name): each name once,
  // graph inputs first, in no other order. InvalidArgument as Session::Run.
  absl::StatusOr<std::vector<Tensor>> Read(const std::vector<Tensor>& sample) const;

 private:
  std::unique_ptr<Session> session_;  // null when every name is a graph input
  std::vector<std::string> fetch_;    // computed values, fetched from the session
  std::set<std::string> inputs_;      // graph inputs among the names, taken from the sample
};

}  // namespace squeeze::runtime

#endif  // SQUEEZE_RUNTIME_VALUE_READER_H_
