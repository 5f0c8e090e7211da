#!/usr/bin/env python3
"""Merges directories written by `synthscope generate saxs` into one without copying images.

Usage: python3 scripts/merge_saxs_dirs.py [--first N] OUT DIR...

OUT gets symlinks to every image (files of the second and later DIRs renamed saxs_K<index>.png
so names stay unique) and one labels.jsonl with the lines rewritten to point at them.
With --first N, only the first N images of each DIR are taken."""
import json, os, sys
args = sys.argv[1:]
first = None
if args[:1] == ['--first']:
    first, args = int(args[1]), args[2:]
out = args[0]; os.makedirs(out, exist_ok=True)
with open(os.path.join(out, 'labels.jsonl'), 'w') as f:
    n = 0
    for k, d in enumerate(args[1:]):
        for i, line in enumerate(open(os.path.join(d, 'labels.jsonl'))):
            if first is not None and i >= first:
                break
            v = json.loads(line)
            name = f"saxs_{k}{v['index']:06d}.png" if k else v['file']
            dst = os.path.join(out, name)
            if not os.path.exists(dst):
                os.symlink(os.path.abspath(os.path.join(d, v['file'])), dst)
            v['file'] = name; v['index'] = n; n += 1
            f.write(json.dumps(v, separators=(',', ':')) + '\n')
print(n)
