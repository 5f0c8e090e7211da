#!/bin/bash
# usage: panel.sh NAME MODEL SEEDBASE — 64 samples per lattice with "L,higher orders,ring", classified
set -e
SS=${SS:-synthscope}
n=$1; f=$2; s=$3; i=0
for L in BCC FCC hexagonal lamellar; do
  i=$((i+1)); d=${PANEL_DIR:-/tmp/panel}/panel-$n/$L
  rm -rf $d; $SS sample diffusion --tags "$L,higher orders,ring" --count 64 --seed $((s+i)) --out $d --model $f --write-polar $EXTRA > /dev/null 2>&1
  $SS classify $(ls $d/sample_*.png | grep -v polar) --out $d.cls.jsonl > /dev/null 2>&1
done
