#!/usr/bin/env bash
# `lopa bench train` vs the PyTorch-eager reference (bench/train_ref.py) on ~10M-parameter random-init checkpoints
# of the non-Llama families: GPT2LMHeadModel, CodeGenForCausalLM, PhiForCausalLM, each made by its own reference
# (bench/<family>_ref.py init, bench/configs/<family>-10m.json, seed 0; the family's tokenizer files from
# ../shared/tokenizers copied in). Per family, train_ref.py --check first confirms that the reference's training
# loop computes the family reference's forward; then per method (PT, LoPA, LoRA) compare_train.py alternates the two
# sides ROUNDS times, keeping each side's best median step. One JSON line per comparison on stdout, then a table:
# tokens/s each side (best round median), the ratio lopa / PyTorch, each side's spread over rounds ((max - min) / min
# of the round medians) and the ratio of the fastest single steps (less sensitive to other processes' load).
# Both sides use THREADS threads and OMP_WAIT_POLICY=PASSIVE unless set (compare_train.py).
#   bash bench/run_arch_bench.sh [BUILD_DIR] [ROUNDS] [THREADS]    (defaults: build, 2, 2)
# Environment: LOPA_BENCH_WORK (keep the checkpoints there; default a temporary directory), FAMILIES
# ("gpt2 codegen phi"), METHODS ("pt lopa lora"), BATCH (4), SEQ (128), STEPS (3).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
rounds="${2:-2}"
threads="${3:-2}"
lopa="$build/bin/lopa"
py=/usr/bin/python3
shared="$here/../shared"
work="${LOPA_BENCH_WORK:-$(mktemp -d)}"
[ -n "${LOPA_BENCH_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work"
families="${FAMILIES:-gpt2 codegen phi}"
methods="${METHODS:-pt lopa lora}"
batch="${BATCH:-4}" seq="${SEQ:-128}" steps="${STEPS:-3}"

tokenizer_of() { case "$1" in gpt2) echo gpt2 ;; *) echo codegen ;; esac; }  # Phi-1/1.5/2 use CodeGen's

for fam in $families; do
  dir="$work/$fam-10m"
  if [ ! -f "$dir/model.safetensors" ]; then
    "$py" "$here/bench/${fam}_ref.py" init --config "$here/bench/configs/$fam-10m.json" --out "$dir" --seed 0
    for f in tokenizer.json tokenizer_config.json; do
      src="$shared/tokenizers/$(tokenizer_of "$fam")/$f"
      [ ! -f "$src" ] || cp "$src" "$dir/"
    done
  fi
  OMP_NUM_THREADS="$threads" "$py" "$here/bench/train_ref.py" --model "$dir" --check --batch-size "$batch" \
    --seq-len "$seq" --threads "$threads" >&2
done

results="$work/arch_bench.jsonl"
: > "$results"
echo "# $(uptime)" >&2
for fam in $families; do
  for method in $methods; do
    "$py" "$here/bench/compare_train.py" train --lopa "$lopa" --model "$work/$fam-10m" --method "$method" \
      --batch-size "$batch" --seq-len "$seq" --steps "$steps" --rounds "$rounds" --threads "$threads" | tee -a "$results"
  done
done
echo "# $(uptime)" >&2

"$py" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
spread = lambda v: 100.0 * (max(v) - min(v)) / min(v)
print()
print(f"B {rows[0]['batch_size']}, L {rows[0]['seq_len']}, {rows[0]['threads']} threads, best median of "
      f"{len(rows[0]['lopa_step_ms_rounds'])} rounds per side")
print("| family | params | method | lopa tok/s | PyTorch tok/s | ratio | lopa spread | PyTorch spread "
      "| ratio of fastest steps | load avg |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['family']} | {r['parameters'] / 1e6:.1f}M | {r['method']} | {r['lopa_tokens_per_s']:.0f} | "
          f"{r['torch_tokens_per_s']:.0f} | {r['ratio_vs_torch']:.2f}x | {spread(r['lopa_step_ms_rounds']):.0f}% | "
          f"{spread(r['torch_step_ms_rounds']):.0f}% | {r['torch_step_ms_min'] / r['lopa_step_ms_min']:.2f}x | "
          f"{min(r['load_avg']):.1f}-{max(r['load_avg']):.1f} |")
PY
