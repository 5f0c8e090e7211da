// End-to-end tests of the Generate page's Diffusion mode: sampling in the worker with a
// progress bar per step, Cancel, the classifiers' check, the zip and the Annotate hand-off;
// and the same seed on WebGPU (SwiftShader) and on the CPU backend giving the same images.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { unzipSync, strFromU8 } from 'fflate';
import { serve, launch, openApp, canvasStats, DIST, ARTIFACTS } from './harness.mjs';
import { decodeGrayPng } from './png.mjs';

let server;
before(async () => {
  server = await serve(DIST);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
});
after(() => server?.close());

async function setField(page, selector, value) {
  await page.fill(selector, String(value));
  await page.dispatchEvent(selector, 'change');
}

/** Switches to Diffusion mode and sets tags, steps, count and seed. */
async function configure(page, { tags, steps, count, seed }) {
  await page.selectOption('#mode', 'diffusion');
  await page.waitForSelector('#diffusion-tags');
  for (const box of await page.locator('#diffusion-tags input').all()) await box.uncheck();
  for (const t of tags) await page.check(`#tag-${t.replaceAll(' ', '-')}`);
  await setField(page, '#steps', steps);
  await setField(page, '#diffusion-count', count);
  await setField(page, '#seed', seed);
  await page.selectOption('#diffusion-size', '256');
}

/** Samples and waits for the result; returns the progress values seen on the way. */
async function sample(page) {
  const seen = new Set();
  await page.click('#diffuse');
  await page.waitForSelector('#diffuse-progress', { timeout: 120_000 });
  while (await page.locator('#diffuse-progress').count()) {
    const v = await page.locator('#diffuse-progress').getAttribute('value').catch(() => null);
    if (v !== null) seen.add(Number(v));
    await page.waitForTimeout(20);
  }
  await page.waitForSelector('#diffusion-truth', { timeout: 120_000 });
  return [...seen].sort((a, b) => a - b);
}

/** Downloads the batch zip: entries name → bytes. */
async function downloadBatch(page, name) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#diffuse-download')]);
  const file = `${ARTIFACTS}/${name}`;
  await download.saveAs(file);
  return unzipSync(new Uint8Array(fs.readFileSync(file)));
}

test('diffusion on the CPU: a 4-step batch appears with progress, is checked, zipped, cancelled, and annotated', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors } = await openApp(browser, server.url);
    await configure(page, { tags: ['ring', 'halo'], steps: 4, count: 2, seed: 3 });
    const seen = await sample(page);
    assert.ok(seen.length >= 2 && seen.at(-1) >= 3, `progress values seen: ${seen}`);
    const stats = await canvasStats(page);
    assert.equal(stats.width, 256);
    assert.ok(stats.colours > 20 && stats.nonModal > 0.02, `sample looks blank: ${JSON.stringify(stats)}`);
    const requested = await page.locator('#requested-tags li').allTextContents();
    assert.deepEqual([...requested].sort(), ['halo', 'ring']);
    // The tagger and the realism ensemble have their say.
    await page.waitForSelector('#realism-vote', { timeout: 120_000 });
    assert.match(await page.textContent('#realism-vote'), /realism vote \d\.\d\d/);
    assert.match(await page.textContent('#diffuse-message'), /2 images of diffusion-v3 in [\d.]+ s \(4 steps of dpm\+\+/);
    await page.screenshot({ path: `${ARTIFACTS}/diffusion-cpu.png` });

    // The zip: two 16-bit PNGs, their polar images and one labels.jsonl line each.
    const zip = await downloadBatch(page, 'diffusion.zip');
    const images = Object.keys(zip).filter((f) => /^diffusion_seed3_\d{6}\.png$/.test(f)).sort();
    assert.deepEqual(images, ['diffusion_seed3_000000.png', 'diffusion_seed3_000001.png']);
    assert.ok(zip['diffusion_seed3_000000_polar.png']);
    const lines = strFromU8(zip['labels.jsonl']).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    for (const [i, l] of lines.entries()) {
      assert.equal(l.file, images[i]);
      assert.deepEqual([...l.tags].sort(), ['halo', 'ring']);
      assert.equal(l.generated_by, 'diffusion');
      assert.equal(l.model, 'diffusion-v3');
      assert.equal(l.steps, 4);
      assert.equal(l.seed, 3);
      assert.equal(l.index, i);
      assert.equal(l.width, 256);
      assert.ok(typeof l.realism_score === 'number', 'the realism score is recorded');
    }
    assert.equal(zip[images[0]][24], 16, '16-bit PNG');

    // Cancel: a long run stops after a few steps and says so.
    await setField(page, '#steps', 400);
    await page.click('#diffuse');
    await page.waitForFunction(() => +document.querySelector('#diffuse-progress')?.getAttribute('value') >= 2, null, { timeout: 120_000 });
    await page.waitForSelector('#diffuse-estimate');
    await page.click('#diffuse-cancel');
    await page.waitForFunction(() => /Cancelled after/.test(document.querySelector('#diffuse-message')?.textContent ?? ''), null, { timeout: 60_000 });
    const [, done] = (await page.textContent('#diffuse-message')).match(/Cancelled after (\d+) of 400 steps/);
    assert.ok(Number(done) >= 2 && Number(done) < 400, `cancelled after ${done} steps`);
    // The previous batch is still shown.
    assert.deepEqual((await page.locator('#requested-tags li').allTextContents()).sort(), ['halo', 'ring']);

    // The whole batch goes to the Annotate queue.
    await page.click('#batch-to-annotate');
    await page.waitForFunction(() => location.hash === '#annotate');
    await page.waitForFunction(() => +document.querySelector('#annotate-progress')?.dataset.total === 2, null, { timeout: 60_000 });
    assert.match(await page.textContent('#annotate-current'), /diffusion_seed3_00000[01]\.png/);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

/** Samples one 4-step FCC image with seed 11 and the lattice plane guided at 4 (so the plane
 * is drawn, read and guided: three network passes a step) and returns its polar image (16-bit
 * values). */
async function polarOf(webgpu) {
  const browser = await launch({ webgpu });
  try {
    const { page, errors } = await openApp(browser, server.url);
    assert.equal(await page.getAttribute('.badge', 'data-backend'), webgpu ? 'webgpu' : 'cpu');
    await configure(page, { tags: ['FCC', 'ring', 'circular beamstop'], steps: 4, count: 1, seed: 11 });
    await setField(page, '#lattice-guidance', 4);
    await sample(page);
    const zip = await downloadBatch(page, `diffusion-${webgpu ? 'webgpu' : 'cpu'}.zip`);
    // The line says where FCC's rings were asked for and how strongly the plane was guided.
    const [line] = strFromU8(zip['labels.jsonl']).trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(line.lattice_first_peak_q_inv_angstrom.FCC > 0, JSON.stringify(line));
    assert.equal(line.lattice_guidance, 4);
    assert.deepEqual(errors, []);
    return decodeGrayPng(Buffer.from(zip['diffusion_seed11_000000_polar.png']));
  } finally {
    await browser.close();
  }
}

test('the same seed gives the same sample on WebGPU and on the CPU backend', async () => {
  const cpu = await polarOf(false);
  const gpu = await polarOf(true);
  assert.equal(cpu.pixels.length, 256 * 64);
  assert.equal(gpu.pixels.length, cpu.pixels.length);
  // 16-bit codes of [−1, 1]: one code is 3·10⁻⁵. Measured: 3·10⁻⁵ (one code) after 4 steps;
  // the bound leaves room for other GPUs' rounding.
  let max = 0;
  for (let i = 0; i < cpu.pixels.length; i++) max = Math.max(max, Math.abs(cpu.pixels[i] - gpu.pixels[i]));
  const maxValue = (max / 65535) * 2;
  console.log(`WebGPU vs CPU: max |Δ| of the polar sample ${maxValue.toExponential(2)} (value range 2)`);
  assert.ok(maxValue < 5e-4, `max |Δ| ${maxValue}`);
});
