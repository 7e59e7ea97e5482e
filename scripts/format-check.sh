#!/usr/bin/env bash
# Checks that every C++ file the repository tracks is formatted as .clang-format says; lists the
# ones that are not. Fix them with: clang-format -i FILE... (or scripts/format-check.sh --fix).
# Exit 77 (skipped) when clang-format is missing.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if ! command -v clang-format >/dev/null 2>&1; then
  echo "format-check: clang-format is missing (deploy/install-deps.sh installs it); skipped"
  exit 77
fi
mapfile -t files < <(git ls-files '*.cc' '*.h' 2>/dev/null || find . -name '*.cc' -o -name '*.h' | grep -v '^./build')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "format-check: ${#bad[@]} of ${#files[@]} files are not formatted as .clang-format says:"
  printf '  %s\n' "${bad[@]}"
  echo "fix them with: scripts/format-check.sh --fix"
  exit 1
fi
echo "format-check: ${#files[@]} files formatted as .clang-format says"
