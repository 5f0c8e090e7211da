#!/usr/bin/env python3
"""Reference timing of Synthscope's grain networks (Net1, Net2) in PyTorch on the CPU.

The same architectures as crates/models/src/unet.rs with the shipped configurations
(crates/models/src/grain.rs: Net1 4 planes -> 16 channels, depth 3; Net2 6 planes -> 16 channels,
depth 2): two 3x3 convolutions + ReLU per level, 2x2 max pooling, 2x2 stride-2 transposed
convolutions, skip concatenation, a bridge and a 1x1 head. Random weights: only speed matters.
Compare with `synthscope bench grain` on the same machine (same thread count).

    pip install torch
    python3 tools/bench_pytorch.py [--runs 5] [--threads 2]

Not a runtime dependency of anything.
"""

import argparse
import statistics
import time

import torch
from torch import nn


class Block(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(
            nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.Conv2d(o, o, 3, padding=1), nn.ReLU()
        )


class UNet(nn.Module):
    def __init__(self, in_channels, base, depth):
        super().__init__()
        ch = lambda level: base << level
        self.down = nn.ModuleList(
            Block(in_channels if l == 0 else ch(l - 1), ch(l)) for l in range(depth)
        )
        self.bridge = Block(in_channels if depth == 0 else ch(depth - 1), ch(depth))
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(ch(l + 1), ch(l), 2, stride=2) for l in reversed(range(depth))
        )
        self.up_blocks = nn.ModuleList(Block(2 * ch(l), ch(l)) for l in reversed(range(depth)))
        self.head = nn.Conv2d(ch(0), 1, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        skips = []
        for block in self.down:
            f = block(x)
            skips.append(f)
            x = self.pool(f)
        x = self.bridge(x)
        for up, block, skip in zip(self.ups, self.up_blocks, reversed(skips)):
            x = block(torch.cat([up(x), skip], 1))
        return self.head(x)


def time_ms(net, x, runs):
    with torch.inference_mode():
        net(x)  # warm up (oneDNN primitive creation)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            net(x)
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net1 = UNet(4, 16, 3).eval()
    net2 = UNet(6, 16, 2).eval()
    print(
        f"PyTorch {torch.__version__} CPU, {torch.get_num_threads()} threads, "
        f"median of {args.runs} runs (ms)"
    )
    print(f"{'image':<12} {'net1':>8} {'net2/iter':>10}")
    # Padded to a multiple of 8 as the Rust pipeline pads (96 x 496 is already one).
    for h, w in [(96, 496), (1024, 1024)]:
        x1 = torch.rand(1, 4, h, w)
        x2 = torch.rand(1, 6, h, w)
        print(f"{f'{h}x{w}':<12} {time_ms(net1, x1, args.runs):>8.1f} {time_ms(net2, x2, args.runs):>10.1f}")


if __name__ == "__main__":
    main()
