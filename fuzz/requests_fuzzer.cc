// libFuzzer target: what the server checks in a search request before it queues anything. The
// first byte picks the check, the rest is the input: a SearchSpec's bytes through its defaults,
// validation and calibration checks (against PP-OCR cls's input shape); an --input-shape as the
// upload takes it; a model record's stored shape string; a RecommendRequest's bytes through its
// validation (what a stored front may answer); an upload's metadata message and an export request
// through theirs.
// Each must answer OK or a status, never crash; a spec that validates must validate again after
// its own round trip, and an upload's input shapes that are taken must read back from their
// stored form unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/loader.h"
#include "server/search_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0: {
      squeeze::v1::SearchSpec requested;
      if (!requested.ParseFromString(bytes)) return 0;
      const squeeze::v1::SearchSpec spec = squeeze::server::NormalizedSpec(requested, 200, 60);
      if (!squeeze::server::ValidateSpec(spec).ok()) return 0;
      (void)squeeze::server::ValidateCalibration(spec, {{"x", {1, 3, 48, 192}}});
      squeeze::v1::SearchSpec again;
      if (!again.ParseFromString(spec.SerializeAsString()) || !squeeze::server::ValidateSpec(again).ok()) {
        __builtin_trap();
      }
      break;
    }
    case 1:
      (void)squeeze::model::ParseInputShape(bytes);
      break;
    case 2:
      (void)squeeze::server::ParseShapes(bytes);
      break;
    case 3: {
      squeeze::v1::RecommendRequest request;
      if (request.ParseFromString(bytes)) (void)squeeze::server::ValidateRecommendRequest(request);
      break;
    }
    case 4: {
      squeeze::v1::UploadMetadata metadata;
      if (!metadata.ParseFromString(bytes)) break;
      (void)squeeze::server::ValidateUploadMetadata(metadata, int64_t{1} << 30);
      // Shapes that are taken are stored in their canonical form and must read back the same.
      const auto shapes = squeeze::server::InputShapesOf(metadata.input_shapes());
      if (!shapes.ok()) break;
      const auto stored = squeeze::server::ParseShapes(squeeze::server::CanonicalInputShapes(*shapes));
      if (!stored.ok() || *stored != *shapes) __builtin_trap();
      break;
    }
    case 5: {
      squeeze::v1::ExportRequest request;
      if (request.ParseFromString(bytes)) (void)squeeze::server::ValidateExportRequest(request);
      break;
    }
  }
  return 0;
}
