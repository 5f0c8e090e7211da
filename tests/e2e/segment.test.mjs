// End-to-end tests of the Segment page: a generated TEM micrograph with known ground truth is
// uploaded, segmented on the CPU and on WebGPU, and the downloaded boundary masks are scored
// against the truth and against each other. Bad files must not disturb earlier results.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { serve, launch, openApp, DIST, ARTIFACTS } from './harness.mjs';
import { decodeGrayPng, encodePng, boundaryF1 } from './png.mjs';

const BIN = process.env.SYNTHSCOPE_BIN;
let server;
let dataDir;
let truth;
let trueCount;
const masks = {};

before(async () => {
  server = await serve(DIST);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  assert.ok(BIN && fs.existsSync(BIN), 'SYNTHSCOPE_BIN must point at the release synthscope binary');
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'synthscope-seg-'));
  // Seed 9001 is not used for the shipped weights (trained on seed 1).
  execFileSync(BIN, ['generate', 'tem', '--count', '1', '--seed', '9001', '--out', dataDir]);
  const label = JSON.parse(fs.readFileSync(path.join(dataDir, 'labels.jsonl'), 'utf8').trim());
  truth = decodeGrayPng(fs.readFileSync(path.join(dataDir, label.boundary)));
  trueCount = label.grain_count;
});
after(() => {
  server?.close();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Uploads files to the Segment page and waits until each of them is done or has failed. */
async function upload(page, files) {
  const list = Array.isArray(files) ? files : [files];
  const before = await page.locator('#segment-queue li').count();
  await page.setInputFiles('#segment-files', list);
  await page.waitForFunction((n) => {
    const rows = [...document.querySelectorAll('#segment-queue li')];
    return rows.length >= n && rows.every((li) => li.dataset.state === 'done' || li.dataset.state === 'failed');
  }, before + list.length, { timeout: 300_000 });
}

async function downloadMask(page, name) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#dl-mask')]);
  const file = `${ARTIFACTS}/${name}`;
  await download.saveAs(file);
  return decodeGrayPng(fs.readFileSync(file));
}

async function segmentAndScore(backend) {
  const browser = await launch({ webgpu: backend === 'webgpu' });
  try {
    const { page, context, errors } = await openApp(browser, `${server.url}#segment`);
    assert.equal(await page.getAttribute('.badge', 'data-backend'), backend);
    await upload(page, path.join(dataDir, 'tem_000000.png'));
    assert.equal(await page.getAttribute('#segment-status', 'data-state'), 'done', await page.textContent('#segment-status'));
    assert.equal(await page.getAttribute('#model-status', 'data-source'), 'network');
    const mask = await downloadMask(page, `segment-${backend}-mask.png`);
    assert.equal(mask.width, truth.width);
    assert.equal(mask.height, truth.height);
    const scores = boundaryF1(mask.pixels.map((v) => (v > 0 ? 1 : 0)), truth.pixels.map((v) => (v > 0 ? 1 : 0)), truth.width, truth.height);
    const count = Number(await page.getAttribute('#seg-grain-count', 'data-count'));
    const iterations = Number(await page.getAttribute('#seg-iterations', 'data-iterations'));
    console.log(`${backend}: boundary F1 ${scores.f1.toFixed(4)} (P ${scores.precision.toFixed(3)}, R ${scores.recall.toFixed(3)}), ${count} grains (truth ${trueCount}), ${iterations} iterations`);
    assert.ok(scores.f1 >= 0.85, `boundary F1 ${scores.f1}`);
    assert.ok(Math.abs(count - trueCount) / trueCount <= 0.15, `grain count ${count} vs true ${trueCount}`);
    assert.ok(iterations >= 1);
    // The histogram and the ASTM numbers (which need the pixel size).
    assert.match(await page.textContent('#astm-planimetric'), /needs the pixel size/);
    await page.fill('#pixel-size', '2.5');
    await page.waitForFunction(() => /^-?\d+\.\d\d$/.test(document.querySelector('#astm-planimetric')?.textContent ?? ''));
    await page.screenshot({ path: `${ARTIFACTS}/segment-${backend}.png`, fullPage: true });
    masks[backend] = mask.pixels;

    // Second visit: the weights come from Cache Storage even with the network path blocked.
    await context.route('**/grain-v1.bin', (route) => route.abort());
    await page.reload();
    await page.waitForSelector('.badge:not([data-backend="pending"])');
    await upload(page, path.join(dataDir, 'tem_000000.png'));
    assert.equal(await page.getAttribute('#model-status', 'data-source'), 'cache');

    // Fully offline: the service worker serves the app shell, Cache Storage the weights.
    await context.setOffline(true);
    await page.reload();
    await page.waitForSelector('.badge:not([data-backend="pending"])');
    await upload(page, path.join(dataDir, 'tem_000000.png'));
    assert.equal(await page.getAttribute('#segment-status', 'data-state'), 'done');
    assert.equal(await page.getAttribute('#model-status', 'data-source'), 'cache');
    await context.setOffline(false);
    assert.deepEqual(errors.filter((e) => !e.includes('grain-v1.bin') && !e.includes('ERR_INTERNET_DISCONNECTED')), []);
  } finally {
    await browser.close();
  }
}

test('CPU: a generated micrograph is segmented with boundary F1 ≥ 0.85 and grain count within 15 %', async () => {
  await segmentAndScore('cpu');
});

test('WebGPU: the same micrograph, and the mask agrees with the CPU on ≥ 99 % of pixels', async () => {
  await segmentAndScore('webgpu');
  assert.ok(masks.cpu && masks.webgpu, 'both backends ran');
  let same = 0;
  for (let i = 0; i < masks.cpu.length; i++) if ((masks.cpu[i] > 0) === (masks.webgpu[i] > 0)) same++;
  const agreement = same / masks.cpu.length;
  console.log(`WebGPU vs CPU mask agreement ${(100 * agreement).toFixed(3)} %`);
  assert.ok(agreement >= 0.99, `agreement ${agreement}`);
});

test('bad files get messages, colour is converted with a notice, earlier results stay', async () => {
  const browser = await launch({ webgpu: false });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'synthscope-bad-'));
  try {
    const { page, errors } = await openApp(browser, `${server.url}#segment`);
    await upload(page, path.join(dataDir, 'tem_000000.png'));
    const goodCount = await page.getAttribute('#seg-grain-count', 'data-count');

    const good = fs.readFileSync(path.join(dataDir, 'tem_000000.png'));
    const files = {
      'empty.png': Buffer.alloc(0),
      'notes.txt': Buffer.from('grain sizes, to do'),
      'truncated.png': good.subarray(0, Math.floor(good.length / 2)),
      'tiny.png': encodePng(8, 8, 1, new Uint8Array(64)),
    };
    for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), bytes);
    await upload(page, Object.keys(files).map((n) => path.join(dir, n)));
    const rows = await page.locator('#segment-queue li').evaluateAll((lis) => lis.map((li) => [li.querySelector('strong').textContent, li.dataset.state, li.querySelector('.state').textContent]));
    const byName = Object.fromEntries(rows.map(([n, s, t]) => [n, { s, t }]));
    assert.equal(byName['empty.png'].s, 'failed');
    assert.match(byName['empty.png'].t, /empty/);
    assert.match(byName['notes.txt'].t, /not a supported image/);
    assert.match(byName['truncated.png'].t, /damaged or truncated/);
    assert.match(byName['tiny.png'].t, /only 8 × 8 pixels/);
    // The earlier result is still displayed.
    assert.equal(await page.getAttribute('#seg-grain-count', 'data-count'), goodCount);

    // A colour version of the micrograph: converted to grey, with a notice, and segmented.
    const grey = decodeGrayPng(good);
    const rgb = new Uint8Array(grey.width * grey.height * 3);
    for (let i = 0; i < grey.pixels.length; i++) rgb.set([grey.pixels[i], grey.pixels[i], grey.pixels[i]], 3 * i);
    fs.writeFileSync(path.join(dir, 'colour.png'), encodePng(grey.width, grey.height, 3, rgb));
    await upload(page, path.join(dir, 'colour.png'));
    await page.waitForSelector('#segment-notice');
    assert.match(await page.textContent('#segment-notice'), /converted to grey/);
    assert.equal(await page.getAttribute('#seg-grain-count', 'data-count'), goodCount);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('Generate → “Segment this image” runs the pipeline with the ground truth beside it', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors } = await openApp(browser, server.url);
    await page.selectOption('#mode', 'tem');
    await page.click('#to-segment');
    await page.waitForSelector('#seg-truth-f1', { timeout: 300_000 });
    assert.equal(await page.evaluate(() => location.hash), '#segment');
    const f1 = Number(await page.textContent('#seg-truth-f1'));
    console.log(`generated image: boundary F1 vs truth ${f1}`);
    assert.ok(f1 >= 0.85, `F1 ${f1}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('the page stays responsive while a larger image is segmented on the CPU', async () => {
  // 384 × 384 px: one Net2 call takes seconds on the browser's CPU backend, which would freeze the
  // page if it ran on the main thread. In the compute worker the page keeps painting.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'synthscope-big-'));
  execFileSync(BIN, ['generate', 'tem', '--count', '1', '--seed', '9002', '--width', '384', '--height', '384', '--out', dir]);
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors } = await openApp(browser, `${server.url}#segment`);
    await page.waitForSelector('.badge:not([data-backend="pending"])');
    // Main-thread timer gaps and long tasks while the pipeline runs.
    await page.evaluate(() => {
      window.__gaps = { max: 0, last: performance.now(), longest: 0 };
      window.__tick = setInterval(() => {
        const now = performance.now();
        window.__gaps.max = Math.max(window.__gaps.max, now - window.__gaps.last);
        window.__gaps.last = now;
      }, 20);
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__gaps.longest = Math.max(window.__gaps.longest, e.duration);
      }).observe({ type: 'longtask' });
    });
    const t0 = Date.now();
    await upload(page, path.join(dir, 'tem_000000.png'));
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(await page.getAttribute('#segment-status', 'data-state'), 'done', await page.textContent('#segment-status'));
    const gaps = await page.evaluate(() => window.__gaps);
    console.log(`384×384 on the CPU: ${seconds.toFixed(1)} s; longest main-thread gap ${gaps.max.toFixed(0)} ms, longest task ${gaps.longest.toFixed(0)} ms`);
    // Drawing the four 384² views is the longest thing left on the main thread (tens of ms).
    assert.ok(gaps.max < 500, `the page froze for ${gaps.max} ms`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
