#!/usr/bin/env python3
"""Merges directories written by `synthscope generate saxs` into one without copying images.

Usage: python3 scripts/merge_saxs_dirs.py OUT DIR...

OUT gets symlinks to every image (files of the second and later DIRs renamed saxs_K<index>.png
so names stay unique) and one labels.jsonl with the lines rewritten to point at them."""
import json, os, sys
out = sys.argv[1]; os.makedirs(out, exist_ok=True)
with open(os.path.join(out, 'labels.jsonl'), 'w') as f:
    n = 0
    for k, d in enumerate(sys.argv[2:]):
        for line in open(os.path.join(d, 'labels.jsonl')):
            v = json.loads(line)
            name = f"saxs_{k}{v['index']:06d}.png" if k else v['file']
            dst = os.path.join(out, name)
            if not os.path.exists(dst):
                os.symlink(os.path.abspath(os.path.join(d, v['file'])), dst)
            v['file'] = name; v['index'] = n; n += 1
            f.write(json.dumps(v, separators=(',', ':')) + '\n')
print(n)
