// Browser time of one diffusion sample (one 256 × 256 image, 20 DPM-Solver++ steps, guidance 2)
// on the CPU backend and on WebGPU (the software adapter here), and the longest task on the
// page's thread while it samples (the worker must keep the page responsive).
// Not a test: run it by hand on a quiet machine.
//
//   SYNTHSCOPE_DIST=... node bench-diffusion.mjs [runs] [backends, e.g. cpu,webgpu] [steps]
//
// The first run of each backend (weights download, shader compilation) is untimed. The time is
// the page's own (`#diffuse-message[data-run-ms]`: click to result, performance.now()).
import { serve, launch, openApp, DIST, median } from './harness.mjs';

const runs = Number(process.argv[2] ?? 3);
const backends = (process.argv[3] ?? 'cpu,webgpu').split(',');
const steps = Number(process.argv[4] ?? 20);

async function setField(page, selector, value) {
  await page.fill(selector, String(value));
  await page.dispatchEvent(selector, 'change');
}

const server = await serve(DIST);

console.log(`diffusion sample in the browser: 1 image 256², ${steps} steps, guidance 2; median of ${runs} runs after a warm-up run`);
try {
  for (const backend of backends) {
    const browser = await launch({ webgpu: backend === 'webgpu' });
    try {
      const { page } = await openApp(browser, server.url);
      await page.evaluate(() => {
        window.__longest = 0;
        new PerformanceObserver((list) => {
          for (const e of list.getEntries()) window.__longest = Math.max(window.__longest, e.duration);
        }).observe({ type: 'longtask', buffered: false });
      });
      await page.selectOption('#mode', 'diffusion');
      await page.selectOption('#diffusion-size', '256');
      await setField(page, '#steps', steps);
      await setField(page, '#diffusion-count', 1);
      const times = [];
      let longest = 0;
      for (let r = 0; r < runs + 1; r++) {
        await setField(page, '#seed', 100 + r);
        const before = await page.getAttribute('#diffuse-message', 'data-run-ms').catch(() => null);
        await page.evaluate(() => { window.__longest = 0; });
        await page.click('#diffuse');
        await page.waitForFunction((b) => {
          const m = document.querySelector('#diffuse-message');
          return m && !document.querySelector('#diffuse-progress') && m.dataset.runMs && m.dataset.runMs !== b;
        }, before, { timeout: 1_800_000 });
        const ms = Number(await page.getAttribute('#diffuse-message', 'data-run-ms'));
        const long = await page.evaluate(() => window.__longest);
        if (r > 0) { times.push(ms); longest = Math.max(longest, long); }
      }
      console.log(`${backend.padEnd(8)} ${(median(times) / 1000).toFixed(2)} s (runs: ${times.map((t) => (t / 1000).toFixed(2)).join(', ')}); longest page task ${longest.toFixed(0)} ms`);
    } finally {
      await browser.close();
    }
  }
} finally {
  server.close();
}
