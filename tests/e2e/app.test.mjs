// End-to-end tests of the built app in headless Chromium: with WebGPU (SwiftShader) and
// without it (CPU fallback).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { unzipSync, strFromU8 } from 'fflate';
import { serve, launch, openApp, canvasStats, DIST, ARTIFACTS } from './harness.mjs';

let server;
before(async () => {
  server = await serve(DIST);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
});
after(() => server?.close());

/** Clicks the download button and returns the saved zip's entries (name → bytes). */
async function downloadZip(page, name) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const file = `${ARTIFACTS}/${name}`;
  await download.saveAs(file);
  return unzipSync(new Uint8Array(fs.readFileSync(file)));
}

/** Sets an input's value and fires `change`, as a user typing and leaving the field. */
async function setField(page, selector, value) {
  await page.fill(selector, String(value));
  await page.dispatchEvent(selector, 'change');
}

test('with WebGPU: the WebGPU backend is active and the probe matches the CPU', async () => {
  const browser = await launch({ webgpu: true });
  try {
    const { page, errors } = await openApp(browser, server.url);
    const badge = page.locator('.badge');
    assert.equal(await badge.getAttribute('data-backend'), 'webgpu', await badge.textContent());
    const diff = Number(await badge.getAttribute('data-probe-max-diff'));
    assert.ok(Number.isFinite(diff) && diff < 1e-4, `probe max |Δ| = ${diff}`);
    await page.waitForSelector('#preview[data-first-preview-ms]:not([data-first-preview-ms=""])');
    const first = Number(await page.getAttribute('#preview', 'data-first-preview-ms'));
    console.log(`first preview ${first.toFixed(0)} ms after navigation start (WebGPU run)`);
    const stats = await canvasStats(page);
    assert.equal(stats.width, 512);
    assert.ok(stats.colours > 20 && stats.nonModal > 0.02, `preview looks blank: ${JSON.stringify(stats)}`);
    await page.screenshot({ path: `${ARTIFACTS}/generate-webgpu.png` });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('without WebGPU: falls back to the CPU, previews, and downloads a SAXS zip', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors } = await openApp(browser, server.url);
    const badge = page.locator('.badge');
    assert.equal(await badge.getAttribute('data-backend'), 'cpu', await badge.textContent());
    assert.ok(Number(await badge.getAttribute('data-probe-max-diff')) < 1e-4);
    await page.waitForSelector('#preview[data-first-preview-ms]:not([data-first-preview-ms=""])');
    const first = Number(await page.getAttribute('#preview', 'data-first-preview-ms'));
    console.log(`first preview ${first.toFixed(0)} ms after navigation start (CPU run)`);
    const stats = await canvasStats(page);
    assert.ok(stats.colours > 20 && stats.nonModal > 0.02, `preview looks blank: ${JSON.stringify(stats)}`);

    // A custom lattice: the tags must name it and list higher orders.
    await page.selectOption('#lattice', 'fcc');
    await setField(page, '#q0', 0.03);
    await page.check('#centre-fixed');
    await page.waitForFunction(() => document.querySelector('#tags')?.textContent.includes('FCC'));
    const tags = await page.locator('#tags li').allTextContents();
    assert.ok(tags.includes('FCC') && tags.includes('higher orders') && tags.includes('ring'), tags.join(', '));
    await page.screenshot({ path: `${ARTIFACTS}/generate-cpu-fcc.png` });

    // A batch too large for browser memory is refused with a pointer to the CLI.
    await page.selectOption('#saxs-size', '2048');
    await setField(page, '#batch-count', 1000);
    await page.click('#download');
    await page.waitForSelector('#batch-message');
    assert.match(await page.textContent('#batch-message'), /need up to 16\.8 GB.*synthscope generate saxs --count 1000/);
    await page.selectOption('#saxs-size', '512');

    // Batch download: N images and N label lines.
    const n = 5;
    await setField(page, '#batch-count', n);
    const zip = await downloadZip(page, 'saxs.zip');
    const images = Object.keys(zip).filter((f) => /^saxs_\d{6}\.png$/.test(f));
    assert.equal(images.length, n);
    const lines = strFromU8(zip['labels.jsonl']).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, n);
    assert.deepEqual(lines.map((l) => l.file), images.sort());
    assert.ok(lines.every((l) => l.tags.includes('FCC')), 'every image of the custom FCC batch is tagged FCC');
    // 16-bit grayscale PNG: IHDR bit depth 16, colour type 0.
    const png = zip[images[0]];
    assert.equal(png[24], 16);
    assert.equal(png[25], 0);
    await page.waitForSelector('#batch-message');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('TEM mode: boundary overlay, grain statistics, zip with masks; bad sizes keep the last image', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors } = await openApp(browser, server.url);
    await page.selectOption('#mode', 'tem');
    await page.waitForSelector('#grain-stats');
    const stats = await canvasStats(page);
    assert.equal(stats.width, 496);
    assert.equal(stats.height, 96);
    assert.ok(stats.sd > 10, `TEM preview looks blank: ${JSON.stringify(stats)}`);
    const grains = Number((await page.textContent('#grain-stats')).match(/^(\d+) grains/)[1]);
    assert.ok(grains > 30 && grains < 400, `${grains} grains`);
    await page.screenshot({ path: `${ARTIFACTS}/generate-tem.png` });

    // An impossible width: a clear message, and the previous image stays.
    await setField(page, '#tem-width', 3);
    await page.waitForSelector('#error');
    assert.match(await page.textContent('#error'), /width = 3 is out of range: 16 to 4096 pixels/);
    assert.equal((await canvasStats(page)).width, 496);
    await setField(page, '#tem-width', 496);
    await page.waitForSelector('#error', { state: 'detached' });

    const n = 3;
    await setField(page, '#batch-count', n);
    const zip = await downloadZip(page, 'tem.zip');
    const names = Object.keys(zip).sort();
    assert.equal(names.filter((f) => /^tem_\d{6}\.png$/.test(f)).length, n);
    assert.equal(names.filter((f) => /_boundary\.png$/.test(f)).length, n);
    assert.equal(names.filter((f) => /_grains\.png$/.test(f)).length, n);
    const lines = strFromU8(zip['labels.jsonl']).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, n);
    for (const l of lines) {
      assert.equal(l.grain_count, l.grain_ecd_px.length);
      assert.ok(names.includes(l.boundary) && names.includes(l.grains));
      assert.deepEqual(l.tags, []);
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('the browser and the CLI write byte-identical datasets for the same seed', { skip: !process.env.SYNTHSCOPE_BIN && 'SYNTHSCOPE_BIN not set' }, async () => {
  const { execFileSync } = await import('node:child_process');
  const out = `${ARTIFACTS}/cli-saxs`;
  fs.rmSync(out, { recursive: true, force: true });
  execFileSync(process.env.SYNTHSCOPE_BIN, ['generate', 'saxs', '--count', '3', '--seed', '7', '--size', '512', '--out', out]);
  const browser = await launch({ webgpu: false });
  try {
    const { page } = await openApp(browser, server.url);
    // The CLI draws from the reference simulator's mix.
    await page.selectOption('#sample', 'random');
    await setField(page, '#seed', 7);
    await setField(page, '#batch-count', 3);
    const zip = await downloadZip(page, 'saxs-seed7.zip');
    for (const name of ['saxs_000000.png', 'saxs_000001.png', 'saxs_000002.png', 'labels.jsonl']) {
      const cli = new Uint8Array(fs.readFileSync(`${out}/${name}`));
      assert.ok(zip[name], `${name} missing from the browser's zip`);
      assert.ok(Buffer.from(zip[name]).equals(Buffer.from(cli)), `${name} differs between browser and CLI`);
    }

    // The wide variety (real detector layouts, distances, beams off the detector) too.
    const wideOut = `${ARTIFACTS}/cli-saxs-wide`;
    fs.rmSync(wideOut, { recursive: true, force: true });
    execFileSync(process.env.SYNTHSCOPE_BIN, ['generate', 'saxs', '--count', '3', '--seed', '7', '--size', '256', '--variety', 'wide', '--out', wideOut]);
    await page.selectOption('#saxs-size', '256');
    await page.selectOption('#variety', 'wide');
    await page.waitForSelector('#variety-note');
    const wide = await downloadZip(page, 'saxs-wide-seed7.zip');
    for (const name of ['saxs_000000.png', 'saxs_000001.png', 'saxs_000002.png', 'labels.jsonl']) {
      const cli = new Uint8Array(fs.readFileSync(`${wideOut}/${name}`));
      assert.ok(Buffer.from(wide[name]).equals(Buffer.from(cli)), `${name} (wide) differs between browser and CLI`);
    }
    const distances = strFromU8(wide['labels.jsonl']).trim().split('\n').map((l) => JSON.parse(l).params.geometry.distance_m);
    assert.ok(distances.some((d) => Math.abs(d - distances[0]) > 1e-6), `one distance for all: ${distances}`);
  } finally {
    await browser.close();
  }
});
