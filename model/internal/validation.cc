#include "model/internal/validation.h"

#include <onnx/checker.h>
#include <onnx/defs/schema.h>

#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "model/internal/graph.h"

namespace squeeze::model::internal {
namespace {

constexpr char kOpaqueDomain[] = "squeeze.opaque";

std::string DomainName(const std::string& domain) { return domain.empty() ? "ai.onnx" : domain; }

// The newest opset libonnx knows for each domain it knows.
std::map<std::string, int> KnownOpsets() {
  std::map<std::string, int> known;
  for (const auto& [domain, range] : onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map()) {
    known[NormalizedDomain(domain)] = range.second;
  }
  return known;
}

// The main-graph node the checker's message blames ("Bad node spec for node. Name: X OpType: Y"),
// -1 when it blames none. The checker reports the outermost node of a failing subgraph.
int BlamedNode(const onnx::GraphProto& graph, const std::string& message) {
  constexpr char kPrefix[] = "Bad node spec for node. Name: ";
  const size_t begin = message.rfind(kPrefix);
  if (begin == std::string::npos) return -1;
  const size_t name_begin = begin + sizeof(kPrefix) - 1;
  const size_t name_end = message.find(" OpType: ", name_begin);
  if (name_end == std::string::npos) return -1;
  const std::string name = message.substr(name_begin, name_end - name_begin);
  for (int i = 0; i < graph.node_size(); ++i) {
    if (graph.node(i).name() == name) return i;
  }
  return -1;
}

// Undoes the changes made to a model for checking, whatever way ValidateModel returns.
class Restorer {
 public:
  explicit Restorer(onnx::ModelProto* model) : model_(model), ir_version_(model->ir_version()) {}
  ~Restorer() {
    if (model_->ir_version() != ir_version_) model_->set_ir_version(ir_version_);
    for (const auto& [index, domain] : domains_) model_->mutable_graph()->mutable_node(index)->set_domain(domain);
    for (auto& [index, attributes] : attributes_)
      model_->mutable_graph()->mutable_node(index)->mutable_attribute()->Swap(&attributes);
    if (added_opset_) model_->mutable_opset_import()->RemoveLast();
  }
  Restorer(const Restorer&) = delete;
  Restorer& operator=(const Restorer&) = delete;

  void MakeOpaque(int index) {
    onnx::NodeProto* node = model_->mutable_graph()->mutable_node(index);
    domains_.emplace_back(index, node->domain());
    node->set_domain(kOpaqueDomain);
    // The checker checks an unknown op's subgraphs all the same: set its attributes aside too.
    attributes_.emplace_back(index, google::protobuf::RepeatedPtrField<onnx::AttributeProto>());
    node->mutable_attribute()->Swap(&attributes_.back().second);
    if (!added_opset_) {
      onnx::OperatorSetIdProto* opset = model_->add_opset_import();
      opset->set_domain(kOpaqueDomain);
      opset->set_version(1);
      added_opset_ = true;
    }
  }

 private:
  onnx::ModelProto* model_;
  int64_t ir_version_;
  std::vector<std::pair<int, std::string>> domains_;
  std::vector<std::pair<int, google::protobuf::RepeatedPtrField<onnx::AttributeProto>>> attributes_;
  bool added_opset_ = false;
};

}  // namespace

std::string OneLine(const std::string& message) {
  std::string line = absl::StrReplaceAll(message, {{"\n\n==> Context: ", "; "}, {"\n", " "}});
  return std::string(absl::StripTrailingAsciiWhitespace(line));
}

absl::StatusOr<ValidationResult> ValidateModel(onnx::ModelProto* model) {
  ValidationResult result;
  const std::map<std::string, int> known = KnownOpsets();
  std::map<std::string, int64_t> newer;  // domain -> the model's version, beyond libonnx's
  for (const onnx::OperatorSetIdProto& opset : model->opset_import()) {
    const std::string domain = NormalizedDomain(opset.domain());
    auto it = known.find(domain);
    if (it == known.end() || opset.version() <= it->second) continue;
    newer[domain] = opset.version();
    result.warnings.push_back(absl::StrCat(
        "opset ", DomainName(domain), " ", opset.version(), " is newer than libonnx knows (", it->second,
        "): its ops were checked against their opset-", it->second, " definitions where libonnx has them"));
  }
  const int64_t ir_version = model->ir_version();
  const bool newer_ir = ir_version > onnx::Version::IR_VERSION;
  if (newer_ir) {
    result.warnings.push_back(absl::StrCat("IR version ", ir_version, " is newer than libonnx knows (",
                                           onnx::Version::IR_VERSION, "): the model was checked as IR ",
                                           onnx::Version::IR_VERSION));
  }
  result.newer_than_libonnx = newer_ir || !newer.empty();

  Restorer restorer(model);
  if (newer_ir) model->set_ir_version(onnx::Version::IR_VERSION);
  // Each round either passes, fails for good, or makes one more node opaque.
  for (int round = 0; round <= model->graph().node_size(); ++round) {
    try {
      onnx::checker::check_model(*model);
      return result;
    } catch (const onnx::checker::ValidationError& e) {
      const std::string message = e.what();
      const int index = BlamedNode(model->graph(), message);
      if (index >= 0) {
        const onnx::NodeProto& node = model->graph().node(index);
        auto it = newer.find(NormalizedDomain(node.domain()));
        if (it != newer.end()) {
          result.warnings.push_back(absl::StrCat("libonnx cannot check node '", node.name(), "' (", node.op_type(),
                                                 ") at ", DomainName(it->first), " opset ", it->second, ": ",
                                                 OneLine(e.std::runtime_error::what())));
          result.opaque_nodes.push_back(index);
          restorer.MakeOpaque(index);
          continue;
        }
      }
      std::string reason = absl::StrCat("the model fails ONNX validation: ", OneLine(message));
      if (result.newer_than_libonnx) {
        absl::StrAppend(&reason, " (the model's IR version or opsets are newer than libonnx knows; it was checked ",
                        "as far as libonnx can)");
      }
      return absl::InvalidArgumentError(reason);
    }
  }
  return absl::InternalError("libonnx's checker kept failing on nodes already set aside");
}

absl::Status CheckDeclaredDimensions(const onnx::ModelProto& model) {
  absl::Status status;
  ForEachGraph(
      model.graph(), "", "", [&status](const onnx::GraphProto& graph, const std::string& path, const std::string&) {
        for (const auto* values : {&graph.input(), &graph.output(), &graph.value_info()}) {
          for (const onnx::ValueInfoProto& value : *values) {
            if (!status.ok() || !value.type().has_tensor_type()) continue;
            const auto& dims = value.type().tensor_type().shape().dim();
            for (int i = 0; i < dims.size(); ++i) {
              if (!dims[i].has_dim_value() || dims[i].dim_value() <= kMaxDimension) continue;
              status = absl::InvalidArgumentError(absl::StrCat(
                  "dimension ", i, " of '", value.name(), "'", path.empty() ? "" : absl::StrCat(" in subgraph ", path),
                  " is declared as ", dims[i].dim_value(), ", larger than any tensor a device holds (at most ",
                  kMaxDimension, " per dimension); fix the model's declared shape"));
            }
          }
        }
      });
  return status;
}

void MakeLibOnnxCompatible(onnx::ModelProto* copy, const std::vector<int>& opaque_nodes) {
  if (copy->ir_version() > onnx::Version::IR_VERSION) copy->set_ir_version(onnx::Version::IR_VERSION);
  if (opaque_nodes.empty()) return;
  for (int index : opaque_nodes) copy->mutable_graph()->mutable_node(index)->set_domain(kOpaqueDomain);
  onnx::OperatorSetIdProto* opset = copy->add_opset_import();
  opset->set_domain(kOpaqueDomain);
  opset->set_version(1);
}

}  // namespace squeeze::model::internal
