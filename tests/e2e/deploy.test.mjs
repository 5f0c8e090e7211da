// The deployable build (scripts/build-site.sh: every URL relative) served under a sub-path, as
// a static host serves an uploaded folder at https://example.org/synthscope/. The app, its
// compute worker, the weights and the service worker must all load from under that path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { serve, launch, openApp, DIST, ARTIFACTS } from './harness.mjs';

const BASE = '/synthscope/';
let server;
before(async () => {
  server = await serve(DIST, { base: BASE });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
});
after(() => server?.close());

test('under a sub-path: the app, its worker and weights load, and Segment and Classify run', async () => {
  assert.ok(server.url.endsWith(BASE), server.url);
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors } = await openApp(browser, server.url);
    assert.equal(await page.locator('.badge').getAttribute('data-backend'), 'cpu');

    // The grain networks' weights come from public/models/ under the sub-path.
    await page.selectOption('#mode', 'tem');
    await page.click('#to-segment');
    await page.waitForSelector('#seg-truth-f1', { timeout: 300_000 });
    const f1 = Number(await page.textContent('#seg-truth-f1'));
    assert.ok(f1 >= 0.85, `boundary F1 ${f1} under ${BASE}`);

    // And the tagger's and the realism ensemble's.
    await page.goto(`${server.url}#generate`);
    await page.selectOption('#mode', 'saxs');
    await page.waitForSelector('#to-classify');
    await page.click('#to-classify');
    await page.waitForFunction(() => [...document.querySelectorAll('#classify-queue li')].some((li) => li.dataset.state === 'done'), null, { timeout: 300_000 });
    await page.waitForSelector('#tag-list li');
    await page.screenshot({ path: `${ARTIFACTS}/deploy-subpath-classify.png` });

    // The service worker is scoped to the sub-path, not to the host's root.
    const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
    assert.equal(new URL(scope).pathname, BASE);

    assert.deepEqual(server.outside, [], `requests outside ${BASE}: ${server.outside.join(', ')}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
