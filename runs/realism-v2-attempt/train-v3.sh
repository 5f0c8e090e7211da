set -e
B=/root/bin/synthscope-v7
cd /root/runs/realism-v3
# from scratch, realism-v1's recipe on 4 000 reference images, 30 % of the fakes no pattern
$B train realism --data /root/data/saxs-train --limit 4000 --val 500 --epochs 3 --batch 16 \
  --width 8 --seed 1 --members resnet,vgg,vit,convnext --not-scattering 0.3 --out cnns.bin
$B train realism --data /root/data/saxs-train --limit 4000 --val 500 --epochs 20 --batch 32 \
  --width 8 --seed 1 --keep cnns.bin:resnet,vgg,vit,convnext --not-scattering 0.3 --out realism-v3.bin
echo trained
