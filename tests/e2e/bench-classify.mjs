// Browser latency of classification (decode, mask and beam centre, joint tagger + realism
// ensemble, profiles) per image, on WebGPU (the software adapter here) and on the CPU backend.
// Not a test: run it by hand on a quiet machine.
//
//   SYNTHSCOPE_BIN=... SYNTHSCOPE_DIST=... node bench-classify.mjs [runs] [sizes, e.g. 256,1000] [backends, e.g. webgpu,cpu]
//
// Each size is first run once untimed (model download, shader compilation) unless WARMUP=0.
// Stage times are the page's own (`#classify-timings`, performance.now() around each stage in
// the worker); the median over runs is printed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { serve, launch, openApp, DIST, median } from './harness.mjs';

const runs = Number(process.argv[2] ?? 3);
const BIN = process.env.SYNTHSCOPE_BIN ?? 'synthscope';
const sizes = (process.argv[3] ?? '256,1000').split(',').map(Number);
const backends = (process.argv[4] ?? 'webgpu,cpu').split(',');
const warmup = process.env.WARMUP === '0' ? 0 : 1;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'synthscope-bench-'));
const images = sizes.map((size) => {
  const out = path.join(dir, String(size));
  execFileSync(BIN, ['generate', 'saxs', '--count', '1', '--seed', '77', '--size', String(size), '--out', out]);
  return { name: `${size}x${size}`, file: path.join(out, 'saxs_000000.png') };
});

const STAGES = ['decode', 'prepare', 'classify', 'profiles'];
const server = await serve(DIST);
console.log(`classification in the browser, median of ${runs} runs${warmup ? ' after a warm-up run' : ', no warm-up'} (ms)`);
console.log(['backend', 'image', ...STAGES, 'total'].map((s) => s.padStart(10)).join(''));
try {
  for (const backend of backends) {
    const browser = await launch({ webgpu: backend === 'webgpu' });
    try {
      const { page } = await openApp(browser, `${server.url}#classify`);
      for (const img of images) {
        const rows = [];
        for (let r = 0; r < runs + warmup; r++) {
          const before = await page.locator('#classify-queue li').count();
          // The shown timings before this run: the new ones differ.
          const previous = await page.evaluate(() => document.querySelector('#classify-timings')?.dataset.stageMs ?? null);
          await page.setInputFiles('#classify-files', img.file);
          await page.waitForFunction((n) => {
            const li = [...document.querySelectorAll('#classify-queue li')];
            return li.length > n && li.every((x) => x.dataset.state === 'done' || x.dataset.state === 'failed');
          }, before, { timeout: 1_800_000 });
          await page.locator('#classify-queue li').nth(before).click();
          await page.waitForFunction((p) => {
            const t = document.querySelector('#classify-timings');
            return t && t.dataset.stageMs !== p;
          }, previous);
          const stages = JSON.parse(await page.getAttribute('#classify-timings', 'data-stage-ms'));
          if (r >= warmup) rows.push(stages);
        }
        const col = (k) => median(rows.map((x) => x[k] ?? 0));
        const total = STAGES.reduce((a, k) => a + col(k), 0);
        console.log([backend, img.name, ...STAGES.map((k) => col(k).toFixed(0)), total.toFixed(0)].map((s) => String(s).padStart(10)).join(''));
      }
    } finally {
      await browser.close();
    }
  }
} finally {
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
