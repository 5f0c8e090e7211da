# tagger-v8 (trained, not shipped) and today's tagger-v7 figures, as run on 2026-12-07.
# Data (the wide sets with the full-flux direct beam of this commit's engine):
synthscope generate saxs --count 30000 --seed 11 --size 256 --variety wide --out data/saxs-wide11
synthscope generate saxs --count 30000 --seed 1 --size 256 --out data/saxs-train
synthscope generate saxs --count 10000 --seed 14 --size 256 --variety wide --out data/saxs-wide14
synthscope generate saxs --count 10000 --seed 4 --size 256 --out data/saxs-train-s4
python3 scripts/merge_saxs_dirs.py data/saxs-mix60 data/saxs-wide11 data/saxs-train
python3 scripts/merge_saxs_dirs.py data/saxs-mix20 data/saxs-wide14 data/saxs-train-s4
for s in 2 6 7; do synthscope generate saxs --count 500 --seed $s --size 256 --out data/saxs-eval$s; done
synthscope generate saxs --count 500 --seed 12 --size 256 --variety wide --out data/saxs-wide12
python3 scripts/saxs_check_set.py draw --count 500 --seed 1 --out data/saxs-check1
# tagger-v7's coefficient network widened for the outer view (its new weights start at 0):
synthscope train tagger --data data/saxs-mix60 --views coeff --epochs 8 --val 500 --seed 1 \
  --lr 5e-4 --init public/models/tagger-v7.bin:coeff --out coeff.bin          # 832 s (639 s preparing)
synthscope train tagger --data data/saxs-mix20 --epochs 2 --batch 32 --val 500 --seed 1 --lr 3e-4 \
  --keep public/models/tagger-v7.bin:image --keep coeff.bin:coeff --freeze-image --freeze-coeff \
  --joint-from-coeff --balance --out tagger-v8.bin                            # 580 s
# Evaluation (NAME = v7 with public/models/tagger-v7.bin, v8 with tagger-v8.bin):
for d in saxs-eval2 saxs-eval6 saxs-eval7 saxs-wide12 saxs-check1; do
  synthscope eval tagger --data data/$d --model MODEL --predictions NAME-$d.jsonl > NAME-$d.json
done
synthscope eval tagger --data data/saxs-check1 --model MODEL --estimated-beam \
  --predictions NAME-saxs-check1-est.jsonl > NAME-saxs-check1-est.json
python3 scripts/saxs_check_set.py report data/saxs-check1 --predictions NAME-saxs-check1.jsonl > NAME-check1-report.json
python3 scripts/saxs_check_set.py report data/saxs-check1 --predictions NAME-saxs-check1-est.jsonl > NAME-check1-est-report.json
