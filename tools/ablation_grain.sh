#!/usr/bin/env bash
# Ablation of Net1's input: one edge detector (plus the grey image) against the fused edge map.
# Each variant trains Net1 alone with the same data, steps and seed, then is evaluated on held-out
# images (Net1 only: --max-iterations 0). Prints one line of JSON per variant.
#
#   tools/ablation_grain.sh TRAIN_DIR EVAL_DIR OUT_DIR [EPOCHS] [LIMIT]
set -euo pipefail
train=$1 eval=$2 out=$3 epochs=${4:-2} limit=${5:-1000}
bin=${SYNTHSCOPE_BIN:-synthscope}
mkdir -p "$out"
for planes in all edges sobel log canny grey; do
  model="$out/net1-$planes.bin"
  if [ ! -f "$model" ]; then
    "$bin" train grain --data "$train" --limit "$limit" --out "$model" --planes "$planes" \
      --net1-epochs "$epochs" --net2-epochs 0 --val 16 >"$out/train-$planes.log" 2>&1
  fi
  result=$("$bin" eval grain --data "$eval" --model "$model" --max-iterations 0)
  echo "{\"planes\":\"$planes\",\"eval\":$result}"
done
