set -e
while ! grep -q done /root/logs/eval7.log; do sleep 10; done
B=/root/bin/synthscope-v7
cd /root/runs/realism-v2
# realism-v1 fine-tuned on 3 000 reference + 3 000 wide engine images, a quarter of the fakes
# frames that are no scattering pattern at all
$B train realism --data /root/data/saxs-realism6k --val 500 --epochs 2 --batch 16 --seed 1 \
  --init /work/main/public/models/realism-v1.bin --not-scattering 0.25 --out realism-v2.bin
echo trained
