# Probe 16's FCC look: in a directory NAME from `synthscope sample diffusion --tags "FCC,higher orders,ring"
# --count 64 --seed 3 --write-polar --out NAME` and `synthscope classify NAME/sample_0000??.png --out
# NAME.cls.jsonl`: the tagger's FCC/BCC scores and how many of FCC's first five reflections (at the
# requested first peak, labels.jsonl) have a local maximum of the azimuthal mean within 1.5 rows.
import json, sys, numpy as np
from PIL import Image
R = np.sqrt(np.array([3,4,8,11,12,16,19,20])/3.0)
def row(q): return 256*np.sqrt(q/0.9)
for n in sys.argv[1:]:
    cls = {json.loads(l)['file'].split('/')[-1]: json.loads(l) for l in open(f'{n}.cls.jsonl')}
    fcc=[];bcc=[];ring=[];hits=[];pair=[];top=[]
    for l in open(f'{n}/labels.jsonl'):
        r=json.loads(l); f=r['file']; c=cls[f]['tags']
        fcc.append(c['FCC']); bcc.append(c['BCC']); ring.append(c['ring'])
        q1=r['lattice_first_peak_q_inv_angstrom'].get('FCC')
        p=np.asarray(Image.open(f'{n}/'+f.replace('.png','_polar.png')),dtype=np.float64)/65535*2-1  # [q rows, chi]
        prof=p.mean(axis=1)
        rows=row(q1*R)
        # a local max of the profile within ±1.5 rows of each expected reflection, standing above its ±4-row surround by > 0.02
        h=[]
        for x in rows[:5]:
            i=int(round(x-0.5))
            if i<5 or i>250: h.append(np.nan); continue
            w=prof[i-1:i+2]; j=i-1+int(np.argmax(w))
            is_max = prof[j]>=prof[j-1] and prof[j]>=prof[j+1]
            prom = prof[j]-0.5*(prof[j-4]+prof[j+4])
            h.append(1.0 if (is_max and prom>0.02) else 0.0)
        hits.append(h)
        # are the first two (111),(200) resolved: a dip between them?
        a,b=int(round(rows[0]-0.5)),int(round(rows[1]-0.5))
        if b-a>=2 and b<255:
            dip=min(prof[a+1:b]) ; pair.append(float(min(prof[a],prof[b])-dip))
        top.append(cls[f]['top_tags'])
    hits=np.array(hits)
    print(n, 'FCC score median %.3f mean %.3f | BCC mean %.3f | ring %.2f'%(np.median(fcc),np.mean(fcc),np.mean(bcc),np.mean(ring)),
          '| reflections found (first 5):', np.round(np.nanmean(hits,axis=0),2),
          '| 111/200 dip median %.3f, resolved(>0.01) %.2f'%(np.median(pair), np.mean(np.array(pair)>0.01)))
