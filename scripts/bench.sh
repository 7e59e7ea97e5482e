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
run squeeze-bench-fidelity@det "$models/ch_PP-OCRv4_det_infer.onnx" --input-shape x=1,3,640,640
run squeeze-bench-fidelity@cls "$models/ch_ppocr_mobile_v2.0_cls_infer.onnx" --input-shape x=1,3,48,192
# Exports measured on rendered text pages (ImageMagick), the realistic calibration for det.
images=$(mktemp -d)
trap 'rm -rf "$images"' EXIT
if bench/fidelity/make_text_images.sh "$images" 2>/dev/null; then
  run squeeze-bench-export@det "$models/ch_PP-OCRv4_det_infer.onnx" --input-shape x=1,3,640,640 \
    --image "$images/det0.ppm" --image "$images/det1.ppm" --repeats 20
else
  run squeeze-bench-export@det "$models/ch_PP-OCRv4_det_infer.onnx" --input-shape x=1,3,640,640 --repeats 20
fi
echo "$ran benchmark programs ran; figures in $out/"
