// squeeze-make-transformer: writes a transformer test model (bench/models/transformer_model.h) as
// an ONNX file, from a named shape or one given size by size.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "absl/strings/str_join.h"
#include "bench/models/transformer_model.h"

int main(int argc, char** argv) {
  using squeeze::bench::TransformerKind;
  std::string preset = "bert-mini";
  std::string output;
  std::optional<int> layers, hidden, heads, ffn, sequence, vocab;
  uint64_t seed = 1;
  CLI::App app{
      "squeeze-make-transformer: write a transformer-shaped ONNX model with seeded weights "
      "(opset 17), for measuring how Squeeze handles transformers at real sizes"};
  app.add_option("--preset", preset,
                 "Shape: " + absl::StrJoin(squeeze::bench::TransformerPresetNames(), ", ") +
                     " (bench/models/transformer_model.h says what each is)")
      ->capture_default_str();
  app.add_option("--output,-o", output, "The ONNX file to write")->required();
  app.add_option("--layers", layers, "Blocks, instead of the preset's")->check(CLI::Range(1, 128));
  app.add_option("--hidden", hidden, "Hidden size, instead of the preset's")->check(CLI::Range(1, 16384));
  app.add_option("--heads", heads, "Attention heads, instead of the preset's")->check(CLI::Range(1, 256));
  app.add_option("--ffn", ffn, "MLP inner size, instead of the preset's")->check(CLI::Range(1, 65536));
  app.add_option("--sequence", sequence, "Tokens (mel frames for the speech encoder), instead of the preset's")
      ->check(CLI::Range(1, 65536));
  app.add_option("--vocab", vocab, "Token ids, instead of the preset's")->check(CLI::Range(1, 1 << 20));
  app.add_option("--seed", seed, "Seed of the weights")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::optional<squeeze::bench::TransformerShape> shape = squeeze::bench::TransformerPreset(preset);
  if (!shape) {
    std::cerr << "squeeze-make-transformer: no preset '" << preset
              << "'; the presets: " << absl::StrJoin(squeeze::bench::TransformerPresetNames(), ", ") << "\n";
    return 2;
  }
  for (const auto& [value, field] : std::map<const std::optional<int>*, int*>{{&layers, &shape->layers},
                                                                              {&hidden, &shape->hidden},
                                                                              {&heads, &shape->heads},
                                                                              {&ffn, &shape->ffn},
                                                                              {&sequence, &shape->sequence},
                                                                              {&vocab, &shape->vocab}}) {
    if (value->has_value()) *field = **value;
  }
  shape->seed = seed;
  absl::StatusOr<onnx::ModelProto> model = squeeze::bench::BuildTransformer(*shape);
  if (!model.ok()) {
    std::cerr << "squeeze-make-transformer: " << model.status().message() << "\n";
    return 2;
  }
  const std::string tmp = output + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out || !model->SerializeToOstream(&out) || !out.flush()) {
      std::cerr << "squeeze-make-transformer: cannot write " << tmp << "\n";
      std::filesystem::remove(tmp);
      return 1;
    }
  }
  std::filesystem::rename(tmp, output);
  fmt::print("{}: {} ({} blocks of {}, {} heads, MLP {}), {:.1f} M parameters, {:.1f} MB\n", output, preset,
             shape->layers, shape->hidden, shape->heads, shape->ffn,
             squeeze::bench::TransformerParameters(*shape) / 1e6, std::filesystem::file_size(output) / 1e6);
  return 0;
}
