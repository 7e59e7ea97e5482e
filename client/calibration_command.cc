// squeeze calibration from-image: images as calibration samples, written in the ONNX test-data
// layout that 'squeeze search start --calibration DIR' reads. Runs locally; needs no server.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"
#include "common/files.h"
#include "model/image_tensor.h"

namespace squeeze::client {
namespace {

struct FromImageFlags {
  std::vector<std::string> images;
  std::string input = "x";
  std::string shape;
  std::string mean = "0.485,0.456,0.406";
  std::string std = "0.229,0.224,0.225";
  bool bgr = false;
  std::string out;
};

template <typename T>
bool ParseList(const std::string& text, std::vector<T>* out) {
  out->clear();
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    T v{};
    if constexpr (std::is_same_v<T, float>) {
      if (!absl::SimpleAtof(part, &v)) return false;
    } else {
      if (!absl::SimpleAtoi(part, &v)) return false;
    }
    out->push_back(v);
  }
  return !out->empty();
}

int FromImage(const FromImageFlags& f) {
  model::ImageTensorOptions options;
  options.input = f.input;
  options.bgr = f.bgr;
  if (!ParseList(f.shape, &options.shape)) {
    std::cerr << "error: --shape takes N,C,H,W (e.g. 1,3,640,640), not '" << f.shape << "'\n";
    return 2;
  }
  if (!ParseList(f.mean, &options.mean) || !ParseList(f.std, &options.std)) {
    std::cerr << "error: --mean and --std take comma-separated numbers\n";
    return 2;
  }
  std::error_code ec;
  std::filesystem::create_directories(f.out, ec);
  if (ec) {
    std::cerr << "error: cannot make " << f.out << ": " << ec.message() << "\n";
    return 1;
  }
  // Convert every image before writing any, so a bad one leaves nothing half-made.
  std::vector<std::string> tensors;
  for (const std::string& image : f.images) {
    absl::StatusOr<std::string> bytes = common::ReadFile(image);
    if (!bytes.ok()) {
      std::cerr << "error: " << bytes.status().message() << "\n";
      return 1;
    }
    absl::StatusOr<onnx::TensorProto> tensor = model::ImageToTensor(*bytes, options);
    if (!tensor.ok()) {
      std::cerr << "error: " << image << ": " << tensor.status().message() << "\n";
      return 2;
    }
    tensors.push_back(tensor->SerializeAsString());
  }
  for (size_t k = 0; k < tensors.size(); ++k) {
    const std::string dir = fmt::format("{}/sample_{}", f.out, k);
    std::filesystem::create_directories(dir, ec);
    absl::Status s =
        ec ? absl::InternalError(ec.message()) : common::WriteFileAtomically(dir + "/input_0.pb", tensors[k]);
    if (!s.ok()) {
      std::cerr << "error: " << dir << ": " << s.message() << "\n";
      return 1;
    }
    std::cout << dir << "\n";
  }
  std::cerr << tensors.size() << " calibration samples written; pass each with --calibration DIR\n";
  return 0;
}

}  // namespace

void AddCalibrationCommands(CLI::App& app, int* exit_code) {
  CLI::App* calibration = app.add_subcommand("calibration", "Make calibration samples (runs locally)");
  calibration->require_subcommand(1);
  auto f = std::make_shared<FromImageFlags>();
  CLI::App* from_image = calibration->add_subcommand(
      "from-image",
      "Images to calibration samples for a model's image input: one directory per image, holding input_0.pb "
      "(an ONNX TensorProto), for 'squeeze search start --calibration DIR'. Reads 8-bit binary PPM/PGM: "
      "'convert photo.jpg -resize 640x640! ppm:photo.ppm' makes one");
  from_image->add_option("IMAGE", f->images, "PPM or PGM images, already at the input's height and width")
      ->required()
      ->check(CLI::ExistingFile);
  from_image->add_option("--input", f->input, "The model input's name")->capture_default_str();
  from_image->add_option("--shape", f->shape, "The input's shape N,C,H,W, e.g. 1,3,640,640")->required();
  from_image->add_option("--mean", f->mean, "Per-channel mean of pixel/255")->capture_default_str();
  from_image->add_option("--std", f->std, "Per-channel std of pixel/255")->capture_default_str();
  from_image->add_flag("--bgr", f->bgr, "Channel 0 is blue (models trained on OpenCV's BGR images)");
  from_image->add_option("-o,--output", f->out, "Directory to write the samples to")->required();
  from_image->callback([f, exit_code] { *exit_code = FromImage(*f); });
}

}  // namespace squeeze::client
