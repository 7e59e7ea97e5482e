#include "runtime/value_reader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "model/surgery.h"

namespace squeeze::runtime {

absl::StatusOr<ValueReader> ValueReader::Create(const model::LoadedModel& model, const std::vector<std::string>& names,
                                                int threads) {
  std::set<std::string> graph_inputs, graph_outputs, computed;
  for (const auto& v : model.proto.graph().input()) graph_inputs.insert(v.name());
  for (const auto& v : model.proto.graph().output()) graph_outputs.insert(v.name());
  for (const onnx::NodeProto& n : model.proto.graph().node()) computed.insert(n.output().begin(), n.output().end());
  ValueReader reader;
  std::vector<std::string> expose;
  for (const std::string& name : std::set<std::string>(names.begin(), names.end())) {
    if (graph_inputs.count(name)) {
      reader.inputs_.insert(name);
      continue;
    }
    if (!computed.count(name))
      return absl::InvalidArgumentError(absl::StrCat("the main graph has no value '", name, "'"));
    reader.fetch_.push_back(name);
    if (!graph_outputs.count(name)) expose.push_back(name);
  }
  if (reader.fetch_.empty()) return reader;
  onnx::ModelProto exposed = model.proto;
  if (absl::Status s = model::ExposeValues(&exposed, expose); !s.ok()) return s;
  SessionOptions options;
  options.intra_op_threads = std::max(1, threads);
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(exposed.SerializeAsString(), options);
  if (!session.ok()) return session.status();
  reader.session_ = *std::move(session);
  return reader;
}

absl::StatusOr<std::vector<Tensor>> ValueReader::Read(const std::vector<Tensor>& sample) const {
  std::vector<Tensor> out;
  for (const Tensor& t : sample) {
    if (inputs_.count(t.name)) out.push_back(t);
  }
  if (session_ == nullptr) return out;
  absl::StatusOr<std::vector<Tensor>> fetched = session_->Run(sample, fetch_);
  if (!fetched.ok()) return fetched.status();
  for (Tensor& t : *fetched) out.push_back(std::move(t));
  return out;
}

}  // namespace squeeze::runtime
