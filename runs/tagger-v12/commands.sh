#!/bin/bash
# tagger-v12 (runs/tagger-v11/plan.txt; shipped as public/models/tagger-v12.bin); resume: add --resume to the coefficient command (drop --init)
set -e
# run from the repository root
B=synthscope
D=data
O=.
[ -f $D/saxs-train-s3/labels.jsonl ] || nice -n 5 $B generate saxs --count 30000 --seed 3 --size 256 --out $D/saxs-train-s3
[ -f $D/saxs-mix90/labels.jsonl ] || python3 scripts/merge_saxs_dirs.py $D/saxs-mix90 $D/saxs-wide21 $D/saxs-train $D/saxs-train-s3
nice -n 5 $B train tagger --data $D/saxs-mix90 --views coeff --epochs 6 --val 500 --seed 1 \
  --lr 5e-4 --init public/models/tagger-v7.bin:coeff --out $O/coeff12.bin
nice -n 5 $B train tagger --data $D/saxs-mix30j --epochs 2 --batch 32 --val 500 --seed 1 --lr 3e-4 \
  --keep public/models/tagger-v7.bin:image --keep $O/coeff12.bin:coeff --freeze-image --freeze-coeff \
  --joint-from-coeff --balance --out $O/tagger-v12.bin
