#!/bin/bash
# The experts' loop with diffusion samples (docs/diffusion.md, "The realism ensemble and
# diffusion samples"): how well the shipped ensemble (realism-v1's members, in realism-v2 with its gate) separates diffusion samples from engine images, before
# and after one round that learns from them. Provenance stands in for the experts: every diffusion
# sample is "generated", every clean engine image "experimental".
#
#   tools/realism_round_diffusion.sh [OUT_DIR]     # SYNTHSCOPE=path/to/synthscope to choose the binary
set -euo pipefail
B=${SYNTHSCOPE:-synthscope}
R=${1:-round}
$B generate saxs --count 300 --seed 31 --out "$R/engine-heldout"
$B sample diffusion --tags-of-batch 30 --count 240 --seed 30 --out "$R/diffusion-train"
$B sample diffusion --tags-of-batch 32 --count 200 --seed 32 --out "$R/diffusion-heldout"
$B eval realism --data "$R/engine-heldout" --generated "$R/diffusion-heldout" > "$R/before.json"
$B train realism --init public/models/realism-v2.bin --generate 360 --seed 33 --mix 1:9 \
  --generated "$R/diffusion-train" --epochs 3 --val 100 --out "$R/realism-diffusion-r1.bin"
$B eval realism --model "$R/realism-diffusion-r1.bin" --data "$R/engine-heldout" \
  --generated "$R/diffusion-heldout" > "$R/after.json"
