#!/usr/bin/env bash
# The main job, end to end, against a real server on a fresh data dir: start squeezed on a free
# loopback port, show the device profiles it serves, measure this machine with squeeze-profile and
# upload the profile so `host` becomes a measured device, upload PP-OCRv4 det and show what Squeeze
# understood of it, make calibration samples from rendered text, search its Pareto fronts for this
# machine and a Raspberry Pi 5 on them, name the recommended picks, stop the server. Used by `make demo`.
set -euo pipefail
build="${1:-build}"
bin="$build/bin"
work="$(mktemp -d -t squeeze-demo-XXXXXX)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"; wait "$server_pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting squeezed on a fresh data dir ($work/data)"
"$bin/squeezed" --data-dir "$work/data" --listen 127.0.0.1:0 --port-file "$work/port" 2> "$work/server.log" &
server_pid=$!
for _ in $(seq 1 300); do [ -s "$work/port" ] && break; sleep 0.1; done
if [ ! -s "$work/port" ]; then echo "squeezed did not start:"; cat "$work/server.log"; exit 1; fi
export SQUEEZE_SERVER="127.0.0.1:$(cat "$work/port")"
# A new data dir's first admin key; every call but the health check carries a key.
export SQUEEZE_API_KEY="$(cat "$work/data/initial-api-key")"
sed 's/\(sqz_[0-9a-f]\{8\}\)[0-9a-f]*/\1.../' "$work/server.log"

step "squeezed keys create --data-dir $work/data --team vision (a member key for a second team)"
"$bin/squeezed" keys create --data-dir "$work/data" --team vision | sed 's/\(sqz_[0-9a-f]\{8\}\)[0-9a-f]*/\1.../'

step "squeeze server status"
"$bin/squeeze" server status

step "squeeze devices list"
"$bin/squeeze" devices list

step "squeeze devices show host"
"$bin/squeeze" devices show host > "$work/host.txt"
sed -n '1,30p' "$work/host.txt"

step "squeeze devices show raspberry-pi-5 --json (first lines)"
"$bin/squeeze" devices show raspberry-pi-5 --json > "$work/pi5.json"
head -n 20 "$work/pi5.json"

models="$(dirname "$0")/../.cache/models"
step "Measuring this machine: squeeze-profile --quick --model ch_PP-OCRv4_det_infer.onnx (under 2 minutes)"
"$bin/squeeze-profile" --quick --model "$models/ch_PP-OCRv4_det_infer.onnx" --input-shape x=1,3,640,640 \
  -o "$work/host-profile.json"

step "squeeze devices put host-profile.json --id host (admin key): host becomes a measured device"
"$bin/squeeze" devices put "$work/host-profile.json" --id host
"$bin/squeeze" devices show host | sed -n '1,12p'

step "squeeze models upload ch_PP-OCRv4_det_infer.onnx --input-shape x=1,3,640,640"
"$bin/squeeze" models upload "$models/ch_PP-OCRv4_det_infer.onnx" --input-shape x=1,3,640,640 | tee "$work/upload.txt"
model_id="$(awk 'NR == 1 {print $1}' "$work/upload.txt")"

step "squeeze models show $model_id (first layers)"
"$bin/squeeze" models show "$model_id" > "$work/show.txt"
sed -n '1,16p' "$work/show.txt"
echo "..."
tail -n 3 "$work/show.txt"

step "Calibration samples from rendered text: squeeze calibration from-image"
bash "$(dirname "$0")/../bench/fidelity/make_text_images.sh" "$work/images"
"$bin/squeeze" calibration from-image "$work/images/det0.ppm" "$work/images/det1.ppm" --shape 1,3,640,640 \
  -o "$work/calibration"

step "squeeze search start $model_id --device host --device raspberry-pi-5 --max-latency-ms 200 --calibration ... --watch"
"$bin/squeeze" search start "$model_id" --device host --device raspberry-pi-5 --max-latency-ms 200 \
  --calibration "$work/calibration/sample_0" --calibration "$work/calibration/sample_1" --watch > "$work/search.txt"
cut -c1-160 "$work/search.txt" | sed -n '1,45p'
echo "... ($(wc -l < "$work/search.txt") lines; 'squeeze search show ID' prints them all)"

job_id="$(awk '/^search s-/ {print $2; exit}' "$work/search.txt")"
step "squeeze search plot $job_id -o $build/demo-front.svg"
"$bin/squeeze" search plot "$job_id" -o "$build/demo-front.svg"

step "squeeze recommend $model_id --device raspberry-pi-5 --max-latency-ms 200"
"$bin/squeeze" recommend "$model_id" --device raspberry-pi-5 --max-latency-ms 200

step "Stopping squeezed"
kill -TERM "$server_pid"; wait "$server_pid"; server_pid=""
tail -n 2 "$work/server.log"
echo "Demo finished."
