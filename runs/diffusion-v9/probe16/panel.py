# Probe 16's lattice panel (the screens before `eval diffusion --lattice-panel` existed).
# In $PANEL_DIR, after `panel.sh NAME MODEL 100` (EXTRA="--lattice-guidance 4" etc. for settings) and,
# for the engine row, `synthscope generate saxs --count 2000 --seed 8 --size 256 --out eng8 &&
# synthscope classify eng8 --out eng8.cls.jsonl`:  python3 panel.py engine NAME ...
# Per lattice: AP of the tagger's lattice score over all panel images; the matrix: mean scores.
import json, sys, numpy as np
LAT=['BCC','FCC','hexagonal','lamellar']
def ap(scores, pos):
    o=np.argsort(-np.asarray(scores)); p=np.asarray(pos)[o]
    tp=np.cumsum(p); prec=tp/np.arange(1,len(p)+1)
    return float((prec*p).sum()/max(p.sum(),1))
def report(name, rows):
    # rows: list of (requested lattice, tag dict)
    out=[]
    for L in LAT:
        out.append(ap([r[1][L] for r in rows],[r[0]==L for r in rows]))
    conf=np.array([[np.mean([r[1][M] for r in rows if r[0]==L]) for M in LAT] for L in LAT])
    print('%-8s APs %s mean %.3f | mean score matrix (row asked, col tagger):'%(name, ' '.join('%.2f'%a for a in out), np.mean(out)))
    for L,c in zip(LAT,conf): print('     %-10s'%L, ' '.join('%.2f'%x for x in c))
for n in sys.argv[1:]:
    if n=='engine':
        lab={json.loads(l)['file']:json.loads(l)['tags'] for l in open('eng8/labels.jsonl')}
        rows=[]
        for l in open('eng8.cls.jsonl'):
            c=json.loads(l); t=lab[c['file'].split('/')[-1]]; ls=[L for L in LAT if L in t]
            if len(ls)==1: rows.append((ls[0],c['tags']))
    else:
        rows=[(L,json.loads(l)['tags']) for L in LAT for l in open(f'panel-{n}/{L}.cls.jsonl')]
    report(n, rows)
