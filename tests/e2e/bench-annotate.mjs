// Benchmark of the Annotate page in headless Chromium (not a test: prints medians).
//
//   node bench-annotate.mjs [IMAGES=1000] [LABELS=10000] [REPEATS=3] [SIZE=256]
//
// 1. Import an annotation pack of IMAGES generated images (made by `synthscope labels pack`):
//    from choosing the file to the page reporting the import done, REPEATS times (store cleared
//    in between).
// 2. Open the Annotate page with LABELS stored labels (LABELS / IMAGES annotators' exports
//    imported): from reload to the queue and progress shown, REPEATS times.
// 3. Keystroke-to-next-image latency: `r` pressed 40 times; from the keydown to the next image
//    painted on the canvas (the page measures it with performance.now()).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { serve, launch, openApp, DIST, ARTIFACTS, median } from './harness.mjs';

const [IMAGES = 1000, LABELS = 10000, REPEATS = 3, SIZE = 256] = process.argv.slice(2).map(Number);
const BIN = process.env.SYNTHSCOPE_BIN;
if (!BIN) throw new Error('set SYNTHSCOPE_BIN to the release synthscope binary');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'synthscope-bench-ann-'));
execFileSync(BIN, ['generate', 'saxs', '--count', String(IMAGES), '--seed', '5', '--size', String(SIZE), '--out', dir], { stdio: 'ignore' });
const files = fs.readdirSync(dir).filter((f) => /^saxs_\d+\.png$/.test(f)).sort();
const pack = path.join(dir, 'pack.zip');
execFileSync(BIN, ['labels', 'pack', '--id', 'bench', '--out', pack, ...files.map((f) => path.join(dir, f))], { stdio: 'ignore' });
const items = files.map((f) => createHash('sha256').update(fs.readFileSync(path.join(dir, f))).digest('hex'));
// Identical files (an empty detector, say) are one image in the store.
const DISTINCT = new Set(items).size;
const annotators = Math.max(1, Math.round(LABELS / IMAGES));
const labelsFile = path.join(dir, 'labels.jsonl');
const lines = [];
for (let a = 0; a < annotators; a++) {
  items.forEach((item, i) => lines.push(JSON.stringify({
    item, file: files[i], annotator: `expert-${a}`, realistic: (i + a) % 3 === 0 ? false : true,
    tags: i % 2 ? ['ring'] : [], note: '', updated_at: '2026-11-23T10:00:00Z',
  })));
}
fs.writeFileSync(labelsFile, `${lines.join('\n')}\n`);

const server = await serve(DIST);
const browser = await launch({ webgpu: false });
const result = { images: IMAGES, distinct_images: DISTINCT, image_size_px: SIZE, pack_mb: +(fs.statSync(pack).size / 1e6).toFixed(1), labels: lines.length };
try {
  const { page } = await openApp(browser, `${server.url}#annotate`);
  page.on('dialog', (d) => d.accept());
  const ready = () => page.waitForFunction(() => document.querySelector('#annotate-progress')?.dataset.loaded === 'true', null, { timeout: 300_000 });
  const importTimed = async (file) => {
    const before = await page.evaluate(() => +document.querySelector('#annotate-progress').dataset.imports);
    const t0 = Date.now();
    await page.setInputFiles('#import-file', file);
    await page.waitForFunction((n) => +document.querySelector('#annotate-progress').dataset.imports > n, before, { timeout: 600_000 });
    const ms = Date.now() - t0;
    const err = await page.$('#annotate-error');
    if (err) throw new Error(await err.textContent());
    return ms;
  };
  await ready();
  const importMs = [];
  for (let r = 0; r < REPEATS; r++) {
    await page.click('#clear-store');
    await page.waitForFunction(() => +document.querySelector('#annotate-progress').dataset.total === 0);
    importMs.push(await importTimed(pack));
  }
  result.import_pack_ms = importMs;
  result.import_pack_median_ms = median(importMs);
  result.import_labels_ms = await importTimed(labelsFile);

  const openMs = [];
  for (let r = 0; r < REPEATS; r++) {
    const t0 = Date.now();
    await page.reload();
    await page.waitForFunction((n) => {
      const p = document.querySelector('#annotate-progress');
      return p && p.dataset.loaded === 'true' && +p.dataset.total === n && document.querySelector('#annotate-current')?.dataset.item;
    }, DISTINCT, { timeout: 300_000 }).catch(async (e) => {
      await page.screenshot({ path: path.join(ARTIFACTS, 'bench-annotate-failed.png') });
      const state = await page.evaluate(() => ({ ...document.querySelector('#annotate-progress')?.dataset, error: document.querySelector('#annotate-error')?.textContent }));
      throw new Error(`${e.message}: ${JSON.stringify(state)}`);
    });
    openMs.push(Date.now() - t0);
  }
  result.open_with_labels_ms = openMs;
  result.open_with_labels_median_ms = median(openMs);

  // A fresh annotator labels with the keyboard.
  if (await page.$('#annotator-current')) await page.click('#annotator button.link');
  await page.fill('#annotator-name', 'bench');
  await page.press('#annotator-name', 'Enter');
  await page.evaluate(() => document.activeElement?.blur());
  const latencies = [];
  for (let k = 0; k < 40; k++) {
    const paints = await page.evaluate(() => +document.querySelector('#annotate-canvas').dataset.paints);
    await page.keyboard.press('r');
    await page.waitForFunction((n) => +document.querySelector('#annotate-canvas').dataset.paints > n, paints);
    latencies.push(+(await page.getAttribute('#annotate-canvas', 'data-latency-ms')));
  }
  result.keystroke_to_next_image_ms = latencies;
  result.keystroke_median_ms = median(latencies);
  result.keystroke_max_ms = Math.max(...latencies);
} finally {
  await browser.close();
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
