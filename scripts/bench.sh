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
ran=0
for bench in "$build"/bin/squeeze-bench-*; do
  [ -x "$bench" ] || continue
  name="$(basename "$bench")"
  echo "== $name"
  "$bench" --json > "$out/$name.json"
  cat "$out/$name.json"
  ran=$((ran + 1))
done
echo "$ran benchmark programs ran; figures in $out/"
