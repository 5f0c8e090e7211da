#!/usr/bin/env python3
"""Reference timing of one training step of Synthscope's scattering denoiser in PyTorch.

The same network as crates/models/src/diffusion/denoiser.rs built by
`generator::default_denoiser` (3 543 232 parameters; the script checks the count): the polar
image [batch, 64 chi bins, 256 q rows, 1] read as 64 channels over 256 rows, 3 x 1 convolutions
(Conv2d, as burn runs them), widths 64/128/128/256, one residual block per level (GroupNorm 8,
SiLU, the embedding added per channel, 1 x 1 skip where widths differ), stride-2 downsampling,
ResBlock - 4-head self-attention over the 32 coarsest rows - ResBlock in the middle, nearest
upsampling + 3 x 1 convolution on the way up, sinusoidal time features (64) -> 256 -> 256, the
15 tags and a tags-given flag -> 256 added to it; v-prediction MSE with the cosine schedule, Adam.
Random data: only speed matters. Compare with `synthscope bench diffusion --train-only`
("forward + backward + Adam"), which times the same step in burn.

    pip install torch
    python3 tools/bench_pytorch_diffusion.py [--runs 5] [--threads 2] [--batch 16]

Not a runtime dependency of anything.
"""

import argparse
import math
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F

CHI = 64
ROWS = 256
TAGS = 15
BASE = 64
MULT = [1, 2, 2, 4]
GROUPS = 8
HEADS = 4
EXPECTED_PARAMETERS = 3_543_232


def conv3(i, o):
    return nn.Conv2d(i, o, (3, 1), padding=(1, 0))


class ResBlock(nn.Module):
    def __init__(self, i, o, emb):
        super().__init__()
        self.norm1 = nn.GroupNorm(GROUPS, i)
        self.conv1 = conv3(i, o)
        self.emb = nn.Linear(emb, o)
        self.norm2 = nn.GroupNorm(GROUPS, o)
        self.conv2 = conv3(o, o)
        self.skip = nn.Conv2d(i, o, 1) if i != o else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) if self.skip is not None else x) + h


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.GroupNorm(GROUPS, c)
        self.mha = nn.MultiheadAttention(c, HEADS, batch_first=True)

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.norm(x).reshape(b, c, h * w).transpose(1, 2)
        out, _ = self.mha(t, t, t, need_weights=False)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class Denoiser(nn.Module):
    def __init__(self):
        super().__init__()
        widths = [BASE * m for m in MULT]
        emb = 4 * BASE
        self.time1 = nn.Linear(BASE, emb)
        self.time2 = nn.Linear(emb, emb)
        self.tags = nn.Linear(TAGS + 1, emb)
        self.input = conv3(CHI, widths[0])
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        w = widths[0]
        for level, wl in enumerate(widths):
            self.down.append(ResBlock(w, wl, emb))
            w = wl
            if level + 1 < len(widths):
                self.downsample.append(nn.Conv2d(w, w, (3, 1), stride=(2, 1), padding=(1, 0)))
        self.mid1 = ResBlock(w, w, emb)
        self.attention = Attention(w)
        self.mid2 = ResBlock(w, w, emb)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(widths))):
            self.up.append(ResBlock(w + widths[level], widths[level], emb))
            w = widths[level]
            if level > 0:
                self.upsample.append(conv3(w, widths[level - 1]))
                w = widths[level - 1]
        self.out_norm = nn.GroupNorm(GROUPS, widths[0])
        self.output = conv3(widths[0], CHI)

    def forward(self, x, times, tags, given):
        half = BASE // 2
        k = torch.arange(half, dtype=torch.float32)
        a = 1000.0 * times[:, None] * torch.exp(-math.log(10_000.0) * k / half)[None, :]
        features = torch.cat([torch.sin(a), torch.cos(a)], 1)
        emb = self.time2(F.silu(self.time1(features)))
        emb = emb + self.tags(torch.cat([tags * given, given], 1))
        emb = F.silu(emb)
        h = self.input(x)
        skips = []
        for level, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        h = self.mid2(self.attention(self.mid1(h, emb)), emb)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], 1), emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=(2, 1), mode="nearest"))
        return self.output(F.silu(self.out_norm(h)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = Denoiser()
    n = sum(p.numel() for p in net.parameters())
    assert n == EXPECTED_PARAMETERS, f"{n} parameters, not the Rust network's {EXPECTED_PARAMETERS}"
    optim = torch.optim.Adam(net.parameters(), lr=1e-5)
    b = a.batch
    x0 = torch.rand(b, CHI, ROWS, 1) * 2 - 1
    tags = (torch.rand(b, TAGS) < 0.3).float()
    given = torch.ones(b, 1)
    times = (torch.arange(b, dtype=torch.float32) + 0.5) / b
    # Cosine schedule (alpha-bar clipped at 1e-5), v-prediction.
    abar = torch.clamp(torch.cos(times * math.pi / 2) ** 2, min=1e-5)
    alpha, sigma = abar.sqrt()[:, None, None, None], (1 - abar).sqrt()[:, None, None, None]
    seconds = []
    for run in range(a.runs + 1):
        started = time.perf_counter()
        noise = torch.randn_like(x0)
        x_t = alpha * x0 + sigma * noise
        target = alpha * noise - sigma * x0
        loss = F.mse_loss(net(x_t, times, tags, given), target)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        loss.item()
        if run > 0:
            seconds.append(time.perf_counter() - started)
    s = statistics.median(seconds)
    print(
        f"pytorch {torch.__version__}, {a.threads} threads, batch {b}, forward + backward + Adam, "
        f"median of {a.runs} runs: {s:.3f} s ({b / s:.1f} images/s)"
    )


if __name__ == "__main__":
    main()
