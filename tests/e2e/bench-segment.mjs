// Browser latency of the grain pipeline, split by stage, on WebGPU (the software adapter here)
// and on the CPU backend. Not a test: run it by hand on a quiet machine.
//
//   SYNTHSCOPE_BIN=... SYNTHSCOPE_DIST=... node bench-segment.mjs [runs] [sizes, e.g. 496x96,1024x1024] [backends, e.g. webgpu,cpu]
//
// Each image is first run once untimed (shader compilation, model loading) unless WARMUP=0.
// Stage times come from the page's own statistics JSON (`stage_ms`), measured with
// performance.now() around each stage; the median over runs is printed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { serve, launch, openApp, DIST, median } from './harness.mjs';

const runs = Number(process.argv[2] ?? 3);
const BIN = process.env.SYNTHSCOPE_BIN ?? 'synthscope';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'synthscope-bench-'));
const images = [];
const sizes = (process.argv[3] ?? '496x96,1024x1024').split(',').map((s) => s.split('x').map(Number));
const backends = (process.argv[4] ?? 'webgpu,cpu').split(',');
const warmup = process.env.WARMUP === '0' ? 0 : 1;
for (const [w, h] of sizes) {
  const out = path.join(dir, `${h}x${w}`);
  execFileSync(BIN, ['generate', 'tem', '--count', '1', '--seed', '77', '--width', String(w), '--height', String(h), '--out', out]);
  images.push({ name: `${h}x${w}`, file: path.join(out, 'tem_000000.png') });
}

const server = await serve(DIST);
console.log(`grain pipeline in the browser, median of ${runs} runs${warmup ? ' after a warm-up run' : ', no warm-up'} (ms)`);
console.log(['backend', 'image', 'decode', 'edges', 'net1', 'net2', 'iters', 'grains', 'total'].map((s) => s.padStart(9)).join(''));
try {
  for (const backend of backends) {
    const browser = await launch({ webgpu: backend === 'webgpu' });
    try {
      const { page } = await openApp(browser, `${server.url}#segment`);
      for (const img of images) {
        const rows = [];
        for (let r = 0; r < runs + warmup; r++) {
          const before = await page.locator('#segment-queue li').count();
          await page.setInputFiles('#segment-files', img.file);
          await page.waitForFunction((n) => {
            const li = [...document.querySelectorAll('#segment-queue li')];
            return li.length > n && li.every((x) => x.dataset.state === 'done' || x.dataset.state === 'failed');
          }, before, { timeout: 1_800_000 });
          const [download] = await Promise.all([page.waitForEvent('download'), page.click('#dl-json')]);
          const stats = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
          if (r >= warmup) rows.push({ ...stats.stage_ms, iters: stats.iterations });
        }
        const col = (k) => median(rows.map((x) => x[k] ?? 0));
        const total = ['decode', 'edges', 'net1', 'net2', 'grains'].reduce((a, k) => a + col(k), 0);
        console.log([backend, img.name, ...['decode', 'edges', 'net1', 'net2', 'iters', 'grains'].map((k) => col(k).toFixed(0)), total.toFixed(0)].map((s) => String(s).padStart(9)).join(''));
      }
    } finally {
      await browser.close();
    }
  }
} finally {
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
