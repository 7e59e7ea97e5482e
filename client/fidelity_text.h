// How the CLI writes measured per-output fidelity (squeeze.v1.OutputFidelity), for the export
// report and `search show`.
#ifndef SQUEEZE_CLIENT_FIDELITY_TEXT_H_
#define SQUEEZE_CLIENT_FIDELITY_TEXT_H_

#include <string>

#include "google/protobuf/repeated_ptr_field.h"
#include "squeeze/v1/fidelity.pb.h"

namespace squeeze::client {

// "'mask' 1x1x320x320 (mask, weight 0.50): 0.74 dB, cosine 0.520, mask IoU 0.812".
std::string OutputFigures(const v1::OutputFidelity& output);

// Whether the per-output figures say more than the pooled ones: several outputs, or task metrics.
bool WorthShowing(const google::protobuf::RepeatedPtrField<v1::OutputFidelity>& outputs);

}  // namespace squeeze::client

#endif  // SQUEEZE_CLIENT_FIDELITY_TEXT_H_
