#include "client/fidelity_text.h"

#include <fmt/format.h>

#include <cmath>

#include "absl/strings/str_join.h"

namespace squeeze::client {

std::string OutputFigures(const v1::OutputFidelity& output) {
  std::string text = fmt::format("'{}' {} ({}{}): ", output.name(), absl::StrJoin(output.shape(), "x"), output.kind(),
                                 output.kind() == "not float" ? "" : fmt::format(", weight {:.2f}", output.weight()));
  if (output.kind() != "not float") {
    text += fmt::format(
        "{}, cosine {:.3f}{}", std::isinf(output.sqnr_db()) ? "lossless" : fmt::format("{:.2f} dB", output.sqnr_db()),
        output.cosine(), output.error_on().empty() ? "" : fmt::format(" (on its logits '{}')", output.error_on()));
  }
  bool first = output.kind() == "not float";
  for (const v1::TaskMetric& m : output.metrics()) {
    text += fmt::format("{}{} {:.3f}", first ? "" : ", ", m.name(), m.value());
    first = false;
  }
  return text;
}

bool WorthShowing(const google::protobuf::RepeatedPtrField<v1::OutputFidelity>& outputs) {
  if (outputs.size() > 1) return true;
  for (const v1::OutputFidelity& o : outputs) {
    if (o.metrics_size() > 0) return true;
  }
  return false;
}

}  // namespace squeeze::client
