// End-to-end tests of the Annotate page and its IndexedDB label store: a pack of 20 generated
// images made by the CLI is imported, annotated with the keyboard only, the page is reloaded and
// every label is still there; export → clear → import gives identical labels; a corrupt file or a
// label for a missing image changes nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { unzipSync, strFromU8, zipSync, strToU8 } from 'fflate';
import { serve, launch, openApp, DIST, ARTIFACTS } from './harness.mjs';

const BIN = process.env.SYNTHSCOPE_BIN;
const COUNT = 20;
let server;
let dir;
let pack;

before(async () => {
  server = await serve(DIST);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  assert.ok(BIN && fs.existsSync(BIN), 'SYNTHSCOPE_BIN must point at the release synthscope binary');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'synthscope-ann-'));
  execFileSync(BIN, ['generate', 'saxs', '--count', String(COUNT), '--seed', '77', '--size', '128', '--out', dir]);
  const images = fs.readdirSync(dir).filter((f) => f.endsWith('.png')).sort().map((f) => path.join(dir, f));
  pack = path.join(dir, 'pack.zip');
  execFileSync(BIN, ['labels', 'pack', '--id', 'round-1', '--created-by', 'lead', '--out', pack, ...images]);
});
after(() => {
  server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The progress line's numbers. */
const progress = (page) => page.evaluate(() => {
  const p = document.querySelector('#annotate-progress');
  return { done: +p.dataset.done, total: +p.dataset.total, pending: +p.dataset.pending, loaded: p.dataset.loaded === 'true' };
});

/** Waits until the store has been read and no save is in flight, with `done` labels. */
async function settled(page, done) {
  await page.waitForFunction((n) => {
    const p = document.querySelector('#annotate-progress');
    return p && p.dataset.loaded === 'true' && +p.dataset.pending === 0 && (n === null || +p.dataset.done === n);
  }, done, { timeout: 30_000 });
}

/** Imports a file and waits until the page has finished with it (success or error). */
async function importFile(page, file) {
  const count = () => page.evaluate(() => +document.querySelector('#annotate-progress').dataset.imports);
  const before = await count();
  await page.setInputFiles('#import-file', file);
  await page.waitForFunction((n) => +document.querySelector('#annotate-progress').dataset.imports > n, before, { timeout: 60_000 });
}

/** Clicks an export button; returns labels.jsonl's lines, parsed and sorted. */
async function exportLabels(page, button, file) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
  const saved = path.join(dir, file);
  await download.saveAs(saved);
  const zip = unzipSync(new Uint8Array(fs.readFileSync(saved)));
  const lines = strFromU8(zip['labels.jsonl']).trim().split('\n').map((l) => JSON.parse(l));
  return { saved, lines: lines.sort((a, b) => a.item.localeCompare(b.item)), zip };
}

test('annotate 20 images with the keyboard; reload; export, clear, import; bad files change nothing', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors } = await openApp(browser, `${server.url}#annotate`);
    await settled(page, 0);
    // A fresh browser: clear anything a previous run left (the dialog is accepted).
    page.on('dialog', (d) => d.accept());
    await page.click('#clear-store');
    await settled(page, 0);

    await page.fill('#annotator-name', 'ann');
    await page.press('#annotator-name', 'Enter');
    await page.waitForSelector('#annotator-current');

    await importFile(page, pack);
    assert.match(await page.textContent('#annotate-message'), /pack round-1: 20 new images/);
    await page.waitForFunction(() => +document.querySelector('#annotate-progress').dataset.total === 20);
    assert.deepEqual(await progress(page), { done: 0, total: 20, pending: 0, loaded: true });

    // Keyboard only: tags 1 (low-q) on every third image, 5 (ring) on every fourth, then the
    // answer r / f / u in turn; the answer moves to the next image.
    await page.evaluate(() => document.activeElement?.blur());
    const answers = ['r', 'f', 'u'];
    const expected = [];
    for (let i = 0; i < COUNT; i++) {
      const item = await page.getAttribute('#annotate-current', 'data-item');
      const tags = [];
      if (i % 3 === 0) { await page.keyboard.press('1'); tags.push('low-q'); }
      if (i % 4 === 0) { await page.keyboard.press('5'); tags.push('ring'); }
      const key = answers[i % 3];
      await page.keyboard.press(key);
      expected.push({ item, realistic: key === 'r' ? true : key === 'f' ? false : null, tags });
      if (i < COUNT - 1) {
        await page.waitForFunction((it) => document.querySelector('#annotate-current').dataset.item !== it, item);
      }
    }
    await settled(page, COUNT);
    // Undo the last answer and give it again: still 20.
    await page.keyboard.press('z');
    await settled(page, COUNT - 1);
    await page.keyboard.press(answers[(COUNT - 1) % 3]);
    await settled(page, COUNT);
    // The help overlay opens and closes with the keyboard.
    await page.keyboard.press('?');
    await page.waitForSelector('#annotate-help');
    await page.keyboard.press('Escape');
    await page.waitForSelector('#annotate-help', { state: 'detached' });
    await page.screenshot({ path: path.join(ARTIFACTS, 'annotate.png') });

    // Reload: every label is still there.
    await page.reload();
    await page.waitForSelector('.badge:not([data-backend="pending"])', { timeout: 120_000 });
    await settled(page, COUNT);
    assert.equal(await page.textContent('#annotator-current'), 'ann');
    // Back at the first image: its answer (r) shows.
    assert.equal(await page.getAttribute('#annotate-answer', 'data-realistic'), 'true');
    assert.equal(await page.getAttribute('#answer-realistic', 'class'), 'chosen');
    const first = await exportLabels(page, '#export-mine', 'ann-1.zip');
    assert.equal(first.lines.length, COUNT);
    const want = expected.sort((a, b) => a.item.localeCompare(b.item));
    for (const [got, exp] of first.lines.map((l, i) => [l, want[i]])) {
      assert.equal(got.item, exp.item);
      assert.equal(got.annotator, 'ann');
      assert.equal(got.realistic, exp.realistic);
      assert.deepEqual(got.tags, exp.tags);
      assert.match(got.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    }

    // Export with images → clear → import gives identical labels.
    await page.check('#export-images');
    const withImages = await exportLabels(page, '#export-mine', 'ann-images.zip');
    assert.equal(Object.keys(withImages.zip).filter((k) => k.startsWith('images/')).length, COUNT);
    await page.click('#clear-store');
    await page.waitForFunction(() => +document.querySelector('#annotate-progress').dataset.total === 0);
    await importFile(page, withImages.saved);
    await settled(page, COUNT);
    assert.match(await page.textContent('#annotate-message'), /20 new images .*20 new labels/);
    const again = await exportLabels(page, '#export-mine', 'ann-2.zip');
    assert.deepEqual(again.lines, first.lines);

    // Re-importing the same export adds nothing.
    await importFile(page, withImages.saved);
    assert.match(await page.textContent('#annotate-message'), /0 new images \(20 already here\), 0 new labels, 0 updated, 20 skipped/);

    // Bad files: a cut zip, a bad line, a label for an image not in the store. Nothing changes.
    const bytes = fs.readFileSync(withImages.saved);
    const cut = path.join(dir, 'cut.zip');
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
    const badLine = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(badLine, `${JSON.stringify({ ...first.lines[0], annotator: 'bob' })}\n{"item": "nope"}\n`);
    const orphan = path.join(dir, 'orphan.zip');
    fs.writeFileSync(orphan, zipSync({ 'labels.jsonl': strToU8(`${JSON.stringify({ ...first.lines[0], item: 'ab'.repeat(32), annotator: 'bob' })}\n`) }));
    for (const [file, message] of [[cut, /not a readable zip/], [badLine, /line 2/], [orphan, /neither in this browser nor in the file/]]) {
      await importFile(page, file);
      const text = await page.textContent('#annotate-error');
      assert.match(text, message);
      assert.match(text, /[Nn]othing was imported/);
      await settled(page, COUNT);
      assert.deepEqual((await exportLabels(page, '#export-all', 'after-bad.zip')).lines, first.lines);
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('two experts: their exports give the kappa computed by hand on the Dataset page', async () => {
  const { createHash } = await import('node:crypto');
  const pngs = fs.readdirSync(dir).filter((f) => /^saxs_\d+\.png$/.test(f)).sort();
  const items = pngs.map((f) => createHash('sha256').update(fs.readFileSync(path.join(dir, f))).digest('hex'));
  // ann: realistic for images 0–9, fake for 10–19. bob differs on 0 and 1 (fake), 10 (realistic)
  // and 19 (unsure). Agreement 16/20 = 0.8. Shares (realistic, fake, unsure): ann (10, 10, 0)/20,
  // bob (9, 10, 1)/20 → p_e = (90 + 100 + 0)/400 = 0.475 → Cohen's κ = 0.325/0.525 = 0.619.
  // Fleiss pools both: (19, 20, 1)/40 → p_e = 0.47625 → κ = 0.32375/0.52375 = 0.618.
  const answer = (who, i) => {
    if (who === 'bob' && (i === 0 || i === 1)) return false;
    if (who === 'bob' && i === 10) return true;
    if (who === 'bob' && i === 19) return null;
    return i < 10;
  };
  for (const who of ['ann', 'bob']) {
    const lines = items.map((item, i) => JSON.stringify({
      item, file: pngs[i], annotator: who, realistic: answer(who, i), tags: [], note: '', updated_at: '2026-11-23T10:00:00Z',
    }));
    fs.writeFileSync(path.join(dir, `${who}.jsonl`), `${lines.join('\n')}\n`);
  }
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors } = await openApp(browser, `${server.url}#annotate`);
    await settled(page, null);
    page.on('dialog', (d) => d.accept());
    await page.click('#clear-store');
    await page.waitForFunction(() => +document.querySelector('#annotate-progress').dataset.total === 0);
    await importFile(page, pack);
    // Labels before their images would be refused; after the pack they import.
    for (const who of ['ann', 'bob']) {
      await importFile(page, path.join(dir, `${who}.jsonl`));
      assert.match(await page.textContent('#annotate-message'), /20 new labels/);
    }
    await page.click('#nav-dataset');
    await page.waitForSelector('#agreement');
    const a = await page.evaluate(() => ({ ...document.querySelector('#agreement').dataset, ...document.querySelector('#dataset-summary').dataset }));
    assert.equal(a.cohen, '0.619');
    assert.equal(a.fleiss, '0.618');
    assert.equal(a.percent, '0.800');
    assert.equal(a.labels, '40');
    assert.equal(await page.locator('#conflicts li').count(), 4);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dataset.png') });
    // Every label (no mix): the agreement must be the same natively.
    await page.fill('#training-mix', '');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-training')]);
    const saved = path.join(dir, 'training-set.zip');
    await download.saveAs(saved);
    const zip = unzipSync(new Uint8Array(fs.readFileSync(saved)));
    assert.equal(strFromU8(zip['labels.jsonl']).trim().split('\n').length, 40);
    assert.equal(Object.keys(zip).filter((k) => k.startsWith('images/')).length, 20);
    // The companion reads it: the same kappa natively.
    const report = JSON.parse(execFileSync(BIN, ['labels', 'agreement', saved], { encoding: 'utf8' }));
    assert.ok(Math.abs(report.cohen_kappa - 0.325 / 0.525) < 1e-12, String(report.cohen_kappa));
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
