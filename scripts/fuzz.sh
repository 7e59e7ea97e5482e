#!/usr/bin/env bash
# The fuzz harness: libFuzzer targets (fuzz/) built with clang, ASan and UBSan in their own build
# directory, run for a bounded time each on a seed corpus of real and crafted inputs.
#   scripts/fuzz.sh build [BUILD_DIR]               configure and build the targets (default build-fuzz)
#   scripts/fuzz.sh run TARGET SECONDS [BUILD_DIR]  fuzz one target; prints and writes its figures
# `run` writes BUILD_DIR/fuzz-results/TARGET.json (executions, corpus size, crashes) and keeps any
# crashing input in BUILD_DIR/fuzz-results/TARGET/; it exits 1 when the target crashed, 77 when
# the target is not built (run `scripts/fuzz.sh build` first; `make test` does).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command="${1:-}"

case "$command" in
  build)
    dir="${2:-$root/build-fuzz}"
    if ! command -v clang++ >/dev/null 2>&1; then
      echo "fuzz.sh: clang++ is missing; deploy/install-deps.sh installs it" >&2
      exit 1
    fi
    if [ ! -f "$dir/build.ninja" ]; then
      CC=clang CXX=clang++ cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DSQUEEZE_FUZZ=ON -DBUILD_TESTING=OFF > "$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
    fi
    cmake --build "$dir" -j"${JOBS:-2}" --target fuzz_model_load fuzz_profile_json fuzz_requests fuzz_option_table
    ;;
  run)
    target="${2:?target: model_load, profile_json, requests or option_table}"
    seconds="${3:?seconds}"
    dir="${4:-$root/build-fuzz}"
    binary="$dir/bin/fuzz_$target"
    if [ ! -x "$binary" ]; then
      echo "fuzz.sh: $binary is not built; run 'scripts/fuzz.sh build' (make test does)" >&2
      exit 77
    fi
    out="$dir/fuzz-results"
    corpus="$out/corpus-$target"
    artifacts="$out/$target"
    mkdir -p "$corpus" "$artifacts"
    # Seeds: the crafted inputs kept in fuzz/seeds, and real ones from the machine.
    cp "$root/fuzz/seeds/$target/"* "$corpus/"
    # Inputs that once crashed (fixed since) run first, every time.
    [ -d "$root/fuzz/regressions/$target" ] && cp "$root/fuzz/regressions/$target/"* "$corpus/"
    case "$target" in
      model_load)
        find "$root/.cache/models" -maxdepth 2 -name '*.onnx' -size -2M -exec cp {} "$corpus/" \; 2>/dev/null || true
        max_len=2097152 ;;
      profile_json)
        cp "$root/bench/results/host-profile-quick.json" "$corpus/" 2>/dev/null || true
        max_len=524288 ;;
      requests)
        max_len=65536 ;;
      option_table)
        max_len=4096 ;;
      *) echo "fuzz.sh: no target '$target'" >&2; exit 2 ;;
    esac
    log="$out/$target.log"
    set +e
    "$binary" "$corpus" -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=2048 -timeout=20 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" > "$log" 2>&1
    code=$?
    set -e
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    corpus_size="$(find "$corpus" -type f | wc -l)"
    crashes="$(find "$artifacts" -type f | wc -l)"
    printf '{"target": "%s", "seconds": %s, "executions": %s, "corpus_files": %s, "crashes": %s, "exit_code": %s}\n' \
      "$target" "$seconds" "${runs:-0}" "$corpus_size" "$crashes" "$code" | tee "$out/$target.json"
    if [ "$code" -ne 0 ] || [ "$crashes" -ne 0 ]; then
      tail -40 "$log"
      exit 1
    fi
    ;;
  *)
    sed -n '2,9p' "$0"
    exit 2
    ;;
esac
