#!/bin/bash
# tagger-v10 (runs/tagger-v9/plan.txt): tagger-v7's coefficient network widened, fine-tuned on the far-ring mix
set -e
# run from the repository root, with the data of runs/tagger-v9/plan.txt in data/
B=synthscope
D=data
O=.
$B train tagger --data $D/saxs-mix60n --views coeff --epochs 8 --val 500 --seed 1 \
  --lr 5e-4 --init public/models/tagger-v7.bin:coeff --out $O/coeff.bin
$B train tagger --data $D/saxs-mix20n --epochs 2 --batch 32 --val 500 --seed 1 --lr 3e-4 \
  --keep public/models/tagger-v7.bin:image --keep $O/coeff.bin:coeff --freeze-image --freeze-coeff \
  --joint-from-coeff --balance --out $O/tagger-v10.bin
for d in saxs-eval2 saxs-eval6 saxs-eval7 saxs-wide22 saxs-check1; do
  $B eval tagger --data $D/$d --model $O/tagger-v10.bin --predictions $O/v10-$d.jsonl > $O/v10-$d.json
done
$B eval tagger --data $D/saxs-check1 --model $O/tagger-v10.bin --estimated-beam --predictions $O/v10-saxs-check1-est.jsonl > $O/v10-saxs-check1-est.json
