#!/usr/bin/env python3
"""Reference timing of Synthscope's scattering networks (joint tagger, realism ensemble) in PyTorch.

The same architectures as crates/models/src/tagger.rs (joint view: image CNN with 16 stem
channels, coefficient branch on the 440 moduli of the 880 Fourier-Bessel features and 576 ring
statistics: 1016 -> 256 -> 256 -> 128, fusion, 15 logits) and
crates/models/src/realism.rs (ResNet-, VGG-, ViT- and ConvNeXt-style members at width 8, each
standardising its input and pooling by mean and max, and the perceptron on the 576 ring
statistics: 576 -> 128 -> 64 -> 1), with random weights: only speed matters.
Times one batch of 32 images of 256 x 256 through the tagger and all five members, as
`synthscope bench tagger` does in its "networks" column (which it reports per image).

    pip install torch
    python3 tools/bench_pytorch_scattering.py [--runs 5] [--threads 2] [--width 8]

Not a runtime dependency of anything.
"""

import argparse

import torch
from torch import nn

from bench_pytorch import time_ms

SIDE = 256
BATCH = 32
FB = 880
RINGS = 576
TAGS = 15


def norm_block(i, o):
    """Two 3x3 convolutions, each with group norm (o/8 groups) and ReLU."""
    g = max(o // 8, 1)
    return nn.Sequential(
        nn.Conv2d(i, o, 3, padding=1), nn.GroupNorm(g, o), nn.ReLU(),
        nn.Conv2d(o, o, 3, padding=1), nn.GroupNorm(g, o), nn.ReLU(),
    )


def mean_max(x):
    """[b, c, h, w] -> [b, 2c]."""
    return torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1)


class ImageCnn(nn.Module):
    def __init__(self, c=16, e=128):
        super().__init__()
        w = [c, 2 * c, 4 * c, 8 * c, 8 * c]
        self.stem = nn.Sequential(
            nn.Conv2d(1, c, 5, stride=2, padding=2), nn.GroupNorm(max(c // 8, 1), c), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.stages = nn.ModuleList(norm_block(w[s], w[s + 1]) for s in range(4))
        self.pool = nn.MaxPool2d(2)
        self.embed = nn.Linear(2 * w[4], e)

    def forward(self, x):
        x = self.stem(x)
        for s, stage in enumerate(self.stages):
            x = stage(x)
            if s + 1 < len(self.stages):
                x = self.pool(x)
        return torch.relu(self.embed(mean_max(x)))


class CoeffNet(nn.Module):
    def __init__(self, hidden=256, e=128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(FB // 2 + RINGS, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, e), nn.ReLU(),
        )

    def forward(self, x):
        fb, rings = x[:, :FB], x[:, FB:]
        linear = torch.sign(fb) * torch.expm1(fb.abs())
        modulus = linear.reshape(x.shape[0], -1, 2).square().sum(2).sqrt()
        return self.net(torch.cat([torch.log1p(modulus), rings], 1))


class JointTagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.image, self.coeff = ImageCnn(), CoeffNet()
        self.fuse, self.head = nn.Linear(256, 128), nn.Linear(128, TAGS)

    def forward(self, image, coeff):
        joined = torch.cat([self.image(image), self.coeff(coeff)], 1)
        return self.head(torch.relu(self.fuse(joined)))


def standardise(x):
    mean = x.mean((1, 2, 3), keepdim=True)
    c = x - mean
    return c / (c.square().mean((1, 2, 3), keepdim=True) + 1e-6).sqrt()


class ResBlock(nn.Module):
    def __init__(self, i, o, stride):
        super().__init__()
        g = max(o // 8, 1)
        self.body = nn.Sequential(
            nn.Conv2d(i, o, 3, stride=stride, padding=1), nn.GroupNorm(g, o), nn.ReLU(),
            nn.Conv2d(o, o, 3, padding=1), nn.GroupNorm(g, o),
        )
        self.project = nn.Conv2d(i, o, 1, stride=stride) if (i != o or stride != 1) else None

    def forward(self, x):
        skip = x if self.project is None else self.project(x)
        return torch.relu(self.body(x) + skip)


class Resnet(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(
            ResBlock(c, c, 1), ResBlock(c, 2 * c, 2), ResBlock(2 * c, 4 * c, 2),
            ResBlock(4 * c, 4 * c, 2),
        )
        self.head = nn.Linear(8 * c, 1)

    def forward(self, x):
        return self.head(mean_max(self.blocks(torch.relu(self.stem(standardise(x))))))


class Vgg(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, stride=2, padding=1)
        self.blocks = nn.ModuleList(
            [norm_block(c, 2 * c), norm_block(2 * c, 4 * c), norm_block(4 * c, 4 * c)]
        )
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(8 * c, 1)

    def forward(self, x):
        x = self.pool(torch.relu(self.stem(standardise(x))))
        for b in self.blocks:
            x = self.pool(b(x))
        return self.head(mean_max(x))


class Vit(nn.Module):
    def __init__(self, c, patch=16):
        super().__init__()
        d = 4 * c
        self.patch = nn.Conv2d(1, d, patch, stride=patch)
        self.position = nn.Parameter(torch.randn(1, (SIDE // patch) ** 2, d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d, 4, 2 * d, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(2 * d, 1)

    def forward(self, x):
        p = self.patch(standardise(x))
        tokens = p.flatten(2).transpose(1, 2) + self.position
        t = self.norm(self.encoder(tokens))
        return self.head(torch.cat([t.mean(1), t.amax(1)], 1))


class NextBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.depthwise = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.GroupNorm(1, c)
        self.up, self.down = nn.Conv2d(c, 4 * c, 1), nn.Conv2d(4 * c, c, 1)

    def forward(self, x):
        return x + self.down(nn.functional.gelu(self.up(self.norm(self.depthwise(x)))))


class Convnext(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.stem = nn.Conv2d(1, 2 * c, 4, stride=4)
        self.stages = nn.Sequential(NextBlock(2 * c), NextBlock(2 * c))
        self.down = nn.Conv2d(2 * c, 4 * c, 2, stride=2)
        self.stages2 = nn.Sequential(NextBlock(4 * c), NextBlock(4 * c))
        self.head = nn.Linear(8 * c, 1)

    def forward(self, x):
        x = self.stages2(self.down(self.stages(self.stem(standardise(x)))))
        return self.head(mean_max(x))


class Rings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(RINGS, 16 * c), nn.ReLU(), nn.Linear(16 * c, 8 * c), nn.ReLU(),
            nn.Linear(8 * c, 1),
        )

    def forward(self, stats):
        return self.net(stats)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--width", type=int, default=8, help="realism members' width (shipped: 8)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    image = torch.rand(BATCH, 1, SIDE, SIDE)
    coeff = torch.randn(BATCH, FB + RINGS)
    tagger = JointTagger().eval()
    members = {
        "resnet": Resnet(args.width), "vgg": Vgg(args.width), "vit": Vit(args.width),
        "convnext": Convnext(args.width),
    }
    stats = coeff[:, FB:]
    print(
        f"PyTorch {torch.__version__} CPU, {torch.get_num_threads()} threads, batch {BATCH} of "
        f"{SIDE}x{SIDE}, median of {args.runs} runs (ms per image)"
    )

    class Both(nn.Module):
        def forward(self, x):
            return tagger(x, coeff)

    rows = {"joint tagger": time_ms(Both(), image, args.runs) / BATCH}
    for name, net in members.items():
        rows[name] = time_ms(net.eval(), image, args.runs) / BATCH
    rows["rings"] = time_ms(Rings(args.width).eval(), stats, args.runs) / BATCH
    for name, ms in rows.items():
        print(f"{name:<14} {ms:>8.2f}")
    print(f"{'all networks':<14} {sum(rows.values()):>8.2f}")


if __name__ == "__main__":
    main()
