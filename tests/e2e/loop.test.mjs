// End-to-end test of the human-in-the-loop round on the Dataset page: a pack of generated images
// and two experts' labels are imported; the shipped model predicts every image; the latent-space
// view shows one point per image, a click opens the image on the Annotate page and a dragged box
// labels them all with one key; the training set is exported and fine-tuned by the CLI; the new
// weights are imported, every image is predicted again, and the rounds table scores both model
// versions against the consensus exactly as computed here from the stored predictions. The
// imported model survives a reload; a file that is not a weights file is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { unzipSync } from 'fflate';
import { serve, launch, openApp, DIST, ARTIFACTS } from './harness.mjs';

const BIN = process.env.SYNTHSCOPE_BIN;
const ROOT = new URL('../..', import.meta.url).pathname;
const COUNT = 16;
let server;
let dir;
let pack;
let pngs;
let items;

before(async () => {
  server = await serve(DIST);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  assert.ok(BIN && fs.existsSync(BIN), 'SYNTHSCOPE_BIN must point at the release synthscope binary');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'synthscope-loop-'));
  execFileSync(BIN, ['generate', 'saxs', '--count', String(COUNT), '--seed', '91', '--size', '128', '--out', dir]);
  pngs = fs.readdirSync(dir).filter((f) => /^saxs_\d+\.png$/.test(f)).sort();
  items = pngs.map((f) => createHash('sha256').update(fs.readFileSync(path.join(dir, f))).digest('hex'));
  pack = path.join(dir, 'pack.zip');
  execFileSync(BIN, ['labels', 'pack', '--id', 'loop-1', '--created-by', 'lead', '--out', pack, ...pngs.map((f) => path.join(dir, f))]);
  // ann: images 0–7 realistic, 8–15 fake; bob the same but image 0 fake.
  for (const who of ['ann', 'bob']) {
    const lines = items.map((item, i) => JSON.stringify({
      item, file: pngs[i], annotator: who, realistic: who === 'bob' && i === 0 ? false : i < 8,
      tags: [], note: '', updated_at: '2026-11-30T09:00:00Z',
    }));
    fs.writeFileSync(path.join(dir, `${who}.jsonl`), `${lines.join('\n')}\n`);
  }
});
after(() => {
  server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Imports a file on the Annotate page and waits until the page has finished with it. */
async function importFile(page, file) {
  const count = () => page.evaluate(() => +document.querySelector('#annotate-progress').dataset.imports);
  const before = await count();
  await page.setInputFiles('#import-file', file);
  await page.waitForFunction((n) => +document.querySelector('#annotate-progress').dataset.imports > n, before, { timeout: 60_000 });
}

/** The rounds table, one object per model version. */
const rounds = (page) => page.evaluate(() => [...document.querySelectorAll('#rounds tr[data-model]')].map((r) => ({ ...r.dataset })));

/** Waits until the Dataset page has predictions by `model` for every image and no run is going. */
async function predicted(page, model) {
  await page.waitForFunction(([m, n]) => {
    const s = document.querySelector('#dataset-state');
    const row = [...document.querySelectorAll('#rounds tr[data-model]')].find((r) => r.dataset.model === m);
    return s?.dataset.predicting === 'false' && row && +row.dataset.predicted === n;
  }, [model, COUNT], { timeout: 180_000 });
}

/** The stored predictions of `model` (IndexedDB, as the app wrote them). */
const storedPredictions = (page, model) => page.evaluate((m) => new Promise((resolve, reject) => {
  const open = indexedDB.open('synthscope');
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const get = open.result.transaction('predictions').objectStore('predictions').getAll();
    get.onsuccess = () => resolve(get.result.map((t) => JSON.parse(t)).filter((p) => p.model === m));
    get.onerror = () => reject(get.error);
  };
}), model);

/** Precision, recall and agreement of stored predictions against `truth` (item → realistic). */
function scores(predictions, truth) {
  let tp = 0, fp = 0, fn = 0, same = 0, n = 0;
  for (const p of predictions) {
    if (!(p.item in truth)) continue;
    const d = p.realism > p.threshold;
    const t = truth[p.item];
    n++;
    if (d === t) same++;
    if (d && t) tp++; else if (d && !t) fp++; else if (!d && t) fn++;
  }
  const ratio = (a, b) => (b === 0 ? 1 : a / b);
  return { n, precision: ratio(tp, tp + fp), recall: ratio(tp, tp + fn), agreement: same / n };
}

test('a human-in-the-loop round: predict, latent view, box labelling, fine-tune, import, re-predict, scores', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors } = await openApp(browser, `${server.url}#annotate`);
    await page.waitForFunction(() => document.querySelector('#annotate-progress')?.dataset.loaded === 'true');
    page.on('dialog', (d) => d.accept());
    await page.click('#clear-store');
    await page.waitForFunction(() => +document.querySelector('#annotate-progress').dataset.total === 0);
    await page.fill('#annotator-name', 'lead');
    await page.press('#annotator-name', 'Enter');
    await page.waitForSelector('#annotator-current');
    await importFile(page, pack);
    for (const who of ['ann', 'bob']) await importFile(page, path.join(dir, `${who}.jsonl`));

    // The shipped model predicts every image; the latent view shows them all.
    await page.click('#nav-dataset');
    await page.waitForSelector('#model-select');
    const shipped = await page.getAttribute('#active-model', 'data-version');
    assert.equal(shipped, 'tagger-v12+realism-v2');
    await page.click('#repredict');
    await predicted(page, shipped);
    await page.waitForFunction((n) => +document.querySelector('#latent-plot').dataset.points === n, COUNT, { timeout: 60_000 });
    assert.equal(await page.locator('#latent-plot circle.point').count(), COUNT);
    const xy = await page.evaluate(() => [...document.querySelectorAll('#latent-plot circle.point')].map((c) => [+c.getAttribute('cx'), +c.getAttribute('cy')]));
    assert.ok(xy.every(([x, y]) => x >= 0 && x <= 480 && y >= 0 && y <= 480), JSON.stringify(xy));
    assert.ok(new Set(xy.map((p) => p.join())).size > COUNT / 2, 'the points are spread out');
    // Image 0 is tied between ann and bob; the others carry the experts' answer.
    const labelOf = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#latent-plot circle.point')].map((c) => [c.dataset.item, c.dataset.label])));
    assert.equal(labelOf[items[0]], 'unsure');
    assert.equal(labelOf[items[3]], 'realistic');
    assert.equal(labelOf[items[12]], 'fake');

    // A click opens the image on the Annotate page.
    await page.locator(`#latent-plot circle[data-item="${items[5]}"]`).dispatchEvent('click');
    await page.waitForFunction((item) => document.querySelector('#annotate-current')?.dataset.item === item, items[5], { timeout: 30_000 });
    assert.equal(await page.evaluate(() => location.hash), '#annotate');

    // A box over the whole plot selects every point; f labels them fake as "lead".
    await page.click('#nav-dataset');
    await page.waitForSelector('#latent-plot');
    await page.locator('#latent-plot').scrollIntoViewIfNeeded();
    const box = await page.locator('#latent-plot').boundingBox();
    await page.mouse.move(box.x + 3, box.y + 3);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width - 3, box.y + box.height - 3, { steps: 6 });
    await page.mouse.up();
    assert.equal(await page.getAttribute('#latent-selection', 'data-count'), String(COUNT));
    const reads = await page.evaluate(() => +document.querySelector('#dataset-state').dataset.reads);
    await page.keyboard.press('f');
    await page.waitForFunction((n) => +document.querySelector('#dataset-state').dataset.reads > n
      && document.querySelector('#dataset-summary')?.dataset.labels === '48', reads, { timeout: 30_000 });
    assert.equal(await page.getAttribute('#dataset-summary', 'data-annotators'), '3');
    assert.equal(await page.getAttribute('#latent-selection', 'data-count'), '0');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dataset-latent.png'), fullPage: true });

    // Consensus of ann, bob and lead: image 0 fake (2 of 3), 1–7 realistic, 8–15 fake.
    const truth = Object.fromEntries(items.map((item, i) => [item, i >= 1 && i <= 7]));
    const check = async (model) => {
      const row = (await rounds(page)).find((r) => r.model === model);
      const s = scores(await storedPredictions(page, model), truth);
      assert.equal(+row.compared, COUNT, JSON.stringify(row));
      assert.equal(s.n, COUNT);
      // The table shows three decimals.
      for (const k of ['precision', 'recall', 'agreement']) {
        assert.ok(Math.abs(+row[k] - s[k]) <= 0.0005 + 1e-9, `${model} ${k}: table ${row[k]}, stored predictions ${s[k]}`);
      }
      console.log(`# round ${model}: ${JSON.stringify(row)}`);
      return s;
    };
    await check(shipped);

    // Export the training set; the companion fine-tunes the shipped ensemble on it.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-training')]);
    const training = path.join(dir, 'training-set.zip');
    await download.saveAs(training);
    // Mix 4:6 (fake : realistic) of the consensus: all 7 realistic images and round(7·4/6) = 5 fake.
    assert.match(await page.textContent('#dataset-message'), /5 fake and 7 realistic images \(mix 4:6\), 36 labels, 12 images/);
    const zip = unzipSync(new Uint8Array(fs.readFileSync(training)));
    assert.equal(Object.keys(zip).filter((k) => k.startsWith('images/')).length, 12);
    const r2 = path.join(dir, 'r2.bin');
    execFileSync(BIN, ['train', 'realism', '--labels', training, '--init', path.join(ROOT, 'public/models/realism-v2.bin'),
      '--out', r2, '--epochs', '1', '--max-steps-per-epoch', '2', '--batch', '4', '--val', '6'], { stdio: ['ignore', 'ignore', 'pipe'] });

    // A file that is not a weights file is refused; the model in use stays.
    const bad = path.join(dir, 'not-weights.bin');
    fs.copyFileSync(path.join(dir, pngs[0]), bad);
    await page.setInputFiles('#import-weights', bad);
    await page.waitForSelector('#dataset-error', { timeout: 60_000 });
    assert.match(await page.textContent('#dataset-error'), /not-weights\.bin: this is not a realism weights file/);
    assert.equal(await page.getAttribute('#active-model', 'data-version'), shipped);

    // The new weights: imported, active, every image predicted again, a second round scored.
    const sha = createHash('sha256').update(fs.readFileSync(r2)).digest('hex');
    const version = `tagger-v12+r2-${sha.slice(0, 8)}`;
    await page.setInputFiles('#import-weights', r2);
    await page.waitForFunction((v) => document.querySelector('#active-model')?.dataset.version === v, version, { timeout: 60_000 });
    await predicted(page, version);
    assert.deepEqual((await rounds(page)).map((r) => r.model), [shipped, version]);
    await check(version);
    await page.waitForFunction((v) => document.querySelector('#latent-plot').dataset.model === v, version, { timeout: 60_000 });
    assert.equal(await page.locator('#latent-plot circle.point').count(), COUNT);

    // After a reload the app still classifies with the imported round.
    await page.reload();
    await page.waitForSelector('.badge:not([data-backend="pending"])', { timeout: 120_000 });
    await page.click('#nav-dataset');
    await page.waitForFunction((v) => document.querySelector('#active-model')?.dataset.version === v, version, { timeout: 60_000 })
      .catch(async (e) => {
        const db = await page.evaluate(() => new Promise((resolve) => {
          const open = indexedDB.open('synthscope');
          open.onsuccess = () => {
            const tx = open.result.transaction(['settings', 'models']);
            const a = tx.objectStore('settings').getAll();
            const k = tx.objectStore('settings').getAllKeys();
            const m = tx.objectStore('models').getAllKeys();
            tx.oncomplete = () => resolve({ settings: a.result, keys: k.result, models: m.result, version: open.result.version });
          };
        }));
        const shown = await page.evaluate(() => [document.querySelector('#active-model')?.dataset.version, document.querySelector('#dataset-error')?.textContent]);
        throw new Error(`${e.message}; console: ${JSON.stringify(errors)}; db ${JSON.stringify(db)}; shown ${JSON.stringify(shown)}`);
      });
    assert.equal(await page.inputValue('#model-select'), version);

    // A third round through the companion: no file handled by hand.
    const companion = spawn(BIN, ['serve', '--port', '0', '--init', path.join(ROOT, 'public/models/realism-v2.bin'), '--work', path.join(dir, 'serve'),
      '--', '--epochs', '1', '--max-steps-per-epoch', '2', '--batch', '4', '--val', '6'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const url = await new Promise((resolve, reject) => {
        companion.stdout.once('data', (d) => resolve(String(d).trim().replace('listening on ', '')));
        companion.once('exit', (c) => reject(new Error(`synthscope serve exited with ${c}`)));
      });
      await page.fill('#companion-url', url);
      await page.click('#companion-train');
      await page.waitForFunction(() => (document.querySelector('#active-model')?.dataset.version ?? '').startsWith('tagger-v12+realism-r2-'), null, { timeout: 300_000 });
      const third = await page.getAttribute('#active-model', 'data-version');
      await predicted(page, third);
      assert.deepEqual((await rounds(page)).map((r) => r.model), [shipped, version, third]);
      await check(third);
      await page.screenshot({ path: path.join(ARTIFACTS, 'dataset-rounds.png'), fullPage: true });
    } finally {
      companion.kill();
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('a full storage quota is reported as such and the import changes nothing; Generate hands an image to Annotate', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors } = await openApp(browser, `${server.url}#annotate`);
    await page.waitForFunction(() => document.querySelector('#annotate-progress')?.dataset.loaded === 'true');
    page.on('dialog', (d) => d.accept());
    await page.click('#clear-store');
    await page.waitForFunction(() => +document.querySelector('#annotate-progress').dataset.total === 0);
    // Chrome's DevTools protocol shrinks this origin's quota below the pack's size.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(server.url).origin, quotaSize: 64 * 1024 });
    await importFile(page, pack);
    assert.match(await page.textContent('#annotate-error'), /storage for this site is full/);
    // Nothing landed: a fresh read of the store still finds no image.
    await page.reload();
    await page.waitForFunction(() => document.querySelector('#annotate-progress')?.dataset.loaded === 'true', null, { timeout: 60_000 });
    assert.equal(await page.getAttribute('#annotate-progress', 'data-total'), '0');
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(server.url).origin });
    await importFile(page, pack);
    assert.match(await page.textContent('#annotate-message'), /16 new images/);
    await page.waitForFunction((n) => +document.querySelector('#annotate-progress').dataset.total === n, COUNT, { timeout: 30_000 });

    // The Generate page hands its image to the Annotate page, which shows it.
    await page.click('#nav-generate');
    await page.waitForSelector('#to-annotate');
    await page.click('#to-annotate');
    await page.waitForFunction((n) => +document.querySelector('#annotate-progress').dataset.total === n, COUNT + 1, { timeout: 30_000 });
    assert.equal(await page.evaluate(() => location.hash), '#annotate');
    await page.waitForFunction(() => /^saxs_seed\d+_\d{6}\.png · image \d+ of 17$/.test(document.querySelector('#annotate-current')?.textContent ?? ''), null, { timeout: 30_000 });
    assert.deepEqual(errors.filter((e) => !/Quota/i.test(e)), []);
  } finally {
    await browser.close();
  }
});
