#!/usr/bin/env python3
"""The training curve of a `synthscope train` run from its checkpoint log: training loss and
every validation figure of each epoch against the step.

    python3 tools/plot_training.py diffusion-v1.bin.ckpt/log.jsonl --out docs/diffusion-curve.png
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("log")
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="")
    a = p.parse_args()
    rows = [json.loads(l) for l in open(a.log) if l.strip()]
    steps = [r["step"] for r in rows]
    keys = [k for k in rows[0] if k == "train_loss" or k.startswith("val_")]
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    for k in keys:
        ax.plot(steps, [r.get(k) for r in rows], marker="o", ms=3, label=k)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(a.title, fontsize=9)
    fig.tight_layout()
    fig.savefig(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
