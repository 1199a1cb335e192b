#!/usr/bin/env bash
# `lopa serve` benchmark (bench/serve_bench.py): tokens/s and p50 / p99 latency of (a) one task, (b) 8
# soft-prompt tasks mixed in one batch, (c) 8 LoRA adapters mixed in one batch, and a batched HF-style
# eager PyTorch loop over the same model, side by side in one run. Trains 8 one-step LoRA runs (the
# served cost does not depend on their weights), starts the server on 127.0.0.1, stops it after.
#   bash bench/serve_bench.sh [BUILD_DIR] [MODEL_DIR] [serve_bench.py options...]
#   (defaults: build, ../shared/models/glue-lm-8M)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
model="${2:-$here/../shared/models/glue-lm-8M}"
shift $(( $# >= 2 ? 2 : $# ))
lopa="$build/bin/lopa"
work="$(mktemp -d)"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
adapters=()
for i in 0 1 2 3 4 5 6 7; do
  "$lopa" train --model "$model" --task story-names --method lora --rank 8 --batch-size 8 --max-length 64 \
    --max-train-examples 8 --max-eval-examples 2 --max-steps 1 --lr 0.01 --seed "$i" --device cpu \
    --out "$work/lora$i" >"$work/train$i.log" 2>&1 || { cat "$work/train$i.log" >&2; exit 1; }
  adapters+=(--adapter "lora$i=$work/lora$i")
done
"$lopa" serve --model "$model" "${adapters[@]}" --port 0 --max-batch 8 >"$work/server.log" 2>&1 &
server=$!
port=""
for _ in $(seq 600); do
  port="$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$work/server.log" | grep -o '[0-9]*$' || true)"
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "serve_bench: the server did not start" >&2; exit 1; }
echo "# $(uptime); model $model" >&2
/usr/bin/python3 "$here/bench/serve_bench.py" --url "http://127.0.0.1:$port" --model "$model" "$@"
kill -TERM "$server"
wait "$server"
server=""
echo "# $(uptime)" >&2
