// Browser time of one mask-conditioned TEM micrograph (Segment → "Generate micrographs like
// these": the engine's 496 × 96 mask, DPM-Solver++) on the CPU backend and on WebGPU (the
// software adapter here). Not a test: run it by hand on a quiet machine.
//
//   SYNTHSCOPE_DIST=... node bench-micrograph.mjs [runs] [backends, e.g. cpu,webgpu] [steps]
//
// The first run of each backend (weights download, shader compilation) is untimed. The time is
// the page's own ("A 496 × 96 micrograph … in 2.4 s (6 steps)": click to result).
import { serve, launch, openApp, DIST, median } from './harness.mjs';

const runs = Number(process.argv[2] ?? 3);
const backends = (process.argv[3] ?? 'cpu,webgpu').split(',');
const steps = Number(process.argv[4] ?? 6);

async function setField(page, selector, value) {
  await page.fill(selector, String(value));
  await page.dispatchEvent(selector, 'change');
}

const server = await serve(DIST);
console.log(`TEM micrograph in the browser: 496 × 96, ${steps} steps; median of ${runs} runs after a warm-up run`);
try {
  for (const backend of backends) {
    const browser = await launch({ webgpu: backend === 'webgpu' });
    try {
      const { page } = await openApp(browser, `${server.url}#segment`);
      await page.waitForSelector('#micrograph-panel');
      await setField(page, '#micrograph-steps', steps);
      const times = [];
      for (let r = 0; r < runs + 1; r++) {
        await setField(page, '#micrograph-seed', 100 + r);
        await page.click('#draw-micrograph');
        await page.waitForSelector('#micrograph-progress', { timeout: 300_000 });
        await page.waitForSelector('#micrograph-progress', { state: 'detached', timeout: 1_800_000 });
        const text = await page.textContent('#micrograph-message');
        const m = text.match(/in ([\d.]+) s \((\d+) steps\)/);
        if (!m) throw new Error(`unexpected message: ${text}`);
        if (r > 0) times.push(Number(m[1]));
      }
      console.log(`${backend.padEnd(8)} ${median(times).toFixed(2)} s (runs: ${times.map((t) => t.toFixed(2)).join(', ')})`);
    } finally {
      await browser.close();
    }
  }
} finally {
  server.close();
}
