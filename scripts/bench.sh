#!/usr/bin/env bash
# Runs every benchmark program that is built and writes its JSON figures to bench/results/.
# The README quotes these files, with the machine they ran on (bench/results/machine.txt).
set -euo pipefail
build="${1:-build}"
out="bench/results"
mkdir -p "$out"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "os: $(. /etc/os-release; echo "$PRETTY_NAME")"
} > "$out/machine.txt"
models=".cache/models"
ran=0
# run NAME ARGS...: one benchmark program, its JSON to $out/NAME.json (skipped when not built).
run() {
  local name="$1"; shift
  local bin="$build/bin/${name%%@*}"
  [ -x "$bin" ] || return 0
  echo "== $name"
  "$bin" "$@" --json > "$out/$name.json"
  cat "$out/$name.json"
  ran=$((ran + 1))
}
run squeeze-bench-search
run squeeze-bench-upload
run squeeze-bench-table "$models/ch_PP-OCRv4_det_infer.onnx" --input-shape x=1,3,640,640
# Transformer test models at real sizes (bench/models): the option table's phases, peak RSS and
# layers by kind. bert-base (110 M parameters) takes the longest.
transformers="$build/transformer-models"
mkdir -p "$transformers"
for preset in bert-mini speech-base lm-small bert-base; do
  [ -s "$transformers/$preset.onnx" ] || "$build/bin/squeeze-make-transformer" --preset "$preset" -o "$transformers/$preset.onnx"
  run "squeeze-bench-table@$preset" "$transformers/$preset.onnx"
done
# GPTQ against round-to-nearest at 4 and 3 bits, block-wise, on calibration and held-out inputs.
for preset in speech-base bert-mini; do
  run "squeeze-bench-rounding@$preset" "$transformers/$preset.onnx"
done
# Fidelity on rendered text (what the OCR models are for), and on synthetic inputs for comparison.
images="$build/fidelity-images"
bash bench/fidelity/make_text_images.sh "$images"
det=("$models/ch_PP-OCRv4_det_infer.onnx" --input-shape x=1,3,640,640)
cls=("$models/ch_ppocr_mobile_v2.0_cls_infer.onnx" --input-shape x=1,3,48,192)
# cls outputs two logits per line: its eight lines (three upside down) give 16 numbers to measure on.
cls_images=() cls_labelled=()
for k in 0 1 2 3 4 5 6 7; do
  cls_images+=(--image "$images/cls$k.ppm")
  cls_labelled+=(--image "cls=$images/cls$k.ppm")
done
run squeeze-bench-fidelity@det "${det[@]}" --image "$images/det0.ppm" --image "$images/det1.ppm"
run squeeze-bench-fidelity@det-synthetic "${det[@]}"
run squeeze-bench-fidelity@cls "${cls[@]}" "${cls_images[@]}" --candidates 200
run squeeze-bench-fidelity@cls-synthetic "${cls[@]}" --candidates 200
# A front's predicted SQNR against its exports, after the search's check of the predicted errors:
# on synthetic inputs (a search without --calibration), and with the OCR models calibrated on text.
run squeeze-bench-front-fidelity
run squeeze-bench-front-fidelity@text --image "det=$images/det0.ppm" --image "det=$images/det1.ppm" \
  --image "rec=$images/rec0.ppm" --image "rec=$images/rec1.ppm" "${cls_labelled[@]}"
# Exports measured on the rendered text pages, the realistic calibration for det.
run squeeze-bench-export@det "${det[@]}" --image "$images/det0.ppm" --image "$images/det1.ppm" --repeats 20
# A model with MatMuls (its CTC head and attention blocks): block-wise 4-bit MatMulNBits on two text lines.
run squeeze-bench-export@rec "$models/bench/ppocrv4_rec.onnx" --input-shape x=1,3,48,320 --image "$images/rec0.ppm" \
  --image "$images/rec1.ppm" --repeats 20
# Predicted against measured whole-model latency: measures this machine with squeeze-profile --quick
# first (the profile is kept as bench/results/host-profile-quick.json).
run squeeze-bench-latency
[ -f "$build/bench-host-profile.json" ] && cp "$build/bench-host-profile.json" "$out/host-profile-quick.json"
# What squeezed's cap on ONNX Runtime's memory (--search-memory) costs in latency.
run squeeze-bench-arena
run "squeeze-bench-load@$(hostname -s)" --clients 50 --seconds 60
echo "$ran benchmark programs ran; figures in $out/"
