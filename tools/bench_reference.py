#!/usr/bin/env python3
"""Reference timing of Synthscope's grain networks (Net1, Net2) in JAX/XLA on the CPU.

The same architectures as crates/models/src/unet.rs (two 3x3 convolutions + ReLU per level,
2x2 max pooling, 2x2 stride-2 transposed convolutions, skip concatenation, 1x1 head), with random
weights: only the speed matters here. Compare with `synthscope bench grain` on the same machine.

    pip install 'jax[cpu]'
    python3 tools/bench_reference.py [--runs 5]

Not a runtime dependency of anything.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp


def conv(x, w, b, padding="SAME"):
    # x: [n, c, h, w]; w: [o, i, kh, kw]
    y = jax.lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + b[None, :, None, None]


def conv_transpose2(x, w, b):
    # 2x2 kernel, stride 2: every input pixel writes its own 2x2 output block.
    y = jax.lax.conv_transpose(x, w, (2, 2), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + b[None, :, None, None]


def maxpool2(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def init_unet(key, in_channels, base, depth):
    ch = lambda level: base << level
    params = {"down": [], "ups": [], "up_blocks": []}
    keys = iter(jax.random.split(key, 64))

    def w(shape):
        fan_in = shape[1] * shape[2] * shape[3]
        return jax.random.uniform(next(keys), shape, minval=-1, maxval=1) / jnp.sqrt(fan_in)

    def block(i, o):
        return (w((o, i, 3, 3)), jnp.zeros(o), w((o, o, 3, 3)), jnp.zeros(o))

    for level in range(depth):
        params["down"].append(block(in_channels if level == 0 else ch(level - 1), ch(level)))
    params["bridge"] = block(in_channels if depth == 0 else ch(depth - 1), ch(depth))
    for level in reversed(range(depth)):
        # conv_transpose with OIHW here means [out, in, kh, kw].
        params["ups"].append((w((ch(level), ch(level + 1), 2, 2)), jnp.zeros(ch(level))))
        params["up_blocks"].append(block(2 * ch(level), ch(level)))
    params["head"] = (w((1, ch(0), 1, 1)), jnp.zeros(1))
    return params


def run_block(p, x):
    w1, b1, w2, b2 = p
    return jax.nn.relu(conv(jax.nn.relu(conv(x, w1, b1)), w2, b2))


def unet(params, x):
    skips = []
    for p in params["down"]:
        f = run_block(p, x)
        skips.append(f)
        x = maxpool2(f)
    x = run_block(params["bridge"], x)
    for (wt, bt), p, skip in zip(params["ups"], params["up_blocks"], reversed(skips)):
        x = run_block(p, jnp.concatenate([conv_transpose2(x, wt, bt), skip], axis=1))
    return conv(x, *params["head"])


def time_ms(fn, x, runs):
    fn(x).block_until_ready()  # compile + warm up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(x).block_until_ready()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    key = jax.random.PRNGKey(0)
    net1 = init_unet(key, 4, 16, 3)
    net2 = init_unet(jax.random.PRNGKey(1), 6, 8, 2)
    f1 = jax.jit(lambda x: unet(net1, x))
    f2 = jax.jit(lambda x: unet(net2, x))
    print(f"JAX {jax.__version__} on {jax.devices()[0].platform}, median of {args.runs} runs (ms)")
    print(f"{'image':<12} {'net1':>8} {'net2/iter':>10}")
    # Padded to a multiple of 8 as the Rust pipeline pads (96 x 496 is already one).
    for h, w in [(96, 496), (1024, 1024)]:
        x1 = jax.random.uniform(key, (1, 4, h, w))
        x2 = jax.random.uniform(key, (1, 6, h, w))
        print(f"{f'{h}x{w}':<12} {time_ms(f1, x1, args.runs):>8.1f} {time_ms(f2, x2, args.runs):>10.1f}")


if __name__ == "__main__":
    main()
