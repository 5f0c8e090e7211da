set -e
B=/root/bin/synthscope-v7
D=/root/data
cd /root/runs/tagger-v7
# 1. the coefficient network: tagger-v6's, fine-tuned on 30 000 wide + 30 000 reference images
$B train tagger --data $D/saxs-mix60 --views coeff --epochs 8 --val 500 --seed 1 --lr 5e-4 \
  --init /work/main/public/models/tagger-v6.bin:coeff --out coeff.bin
# 2. the joint view on 10 000 wide + 10 000 reference images neither branch learnt from
$B train tagger --data $D/saxs-mix20 --epochs 2 --batch 32 --val 500 --seed 1 --lr 3e-4 \
  --keep /work/main/public/models/tagger-v6.bin:image --keep coeff.bin:coeff --freeze-image --freeze-coeff \
  --joint-from-coeff --balance --out tagger-v7.bin
echo trained
