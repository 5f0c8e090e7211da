// Shared set-up of the end-to-end tests: a static server for the built app (dist/) and
// Debian's Chromium driven by playwright-core. Never downloads a browser.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const TYPES = {
  '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.json': 'application/json', '.png': 'image/png', '.md': 'text/markdown',
};

/**
 * Serves `dir` on 127.0.0.1 at a free port under the path `base` (as a static host serves an
 * uploaded folder, for example `/synthscope/`); resolves to { url, close, outside }, where `url`
 * is the app's address and `outside` lists requests for paths not under `base` (each a 404).
 */
export function serve(dir, { base = '/' } = {}) {
  if (!fs.existsSync(path.join(dir, 'index.html'))) {
    throw new Error(`${dir}/index.html is missing: build the app first (trunk build --release)`);
  }
  const outside = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === base.replace(/\/$/, '') && base !== '/') {
      res.writeHead(301, { location: base }).end();
      return;
    }
    if (!url.pathname.startsWith(base)) {
      outside.push(url.pathname);
      res.writeHead(404).end('not found');
      return;
    }
    const rel = decodeURIComponent(url.pathname.slice(base.length));
    let file = path.normalize(path.join(dir, rel));
    if (!file.startsWith(path.resolve(dir))) { res.writeHead(403).end(); return; }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    fs.readFile(file, (err, data) => {
      if (err) { res.writeHead(404).end('not found'); return; }
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
      res.end(data);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}${base}`,
        close: () => server.close(),
        outside,
      });
    });
  });
}

/** Launches headless Chromium, with a (software) WebGPU adapter when `webgpu` is true. */
export async function launch({ webgpu }) {
  const args = [
    '--no-sandbox', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic',
  ];
  if (webgpu) args.push('--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader');
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args,
  });
}

/** Opens the app, collecting console errors; waits until the runtime badge settles. */
export async function openApp(browser, url) {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(url);
  await page.waitForSelector('.badge:not([data-backend="pending"])', { timeout: 120_000 });
  return { page, context, errors };
}

/**
 * Statistics of the preview canvas: distinct colours, the fraction of pixels that differ from the
 * most common colour, and the standard deviation of the luminance (0–255).
 */
export async function canvasStats(page) {
  return page.evaluate(() => {
    const c = document.querySelector('#preview');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const counts = new Map();
    let s = 0, s2 = 0, n = 0;
    for (let i = 0; i < d.length; i += 4) {
      const key = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
      counts.set(key, (counts.get(key) ?? 0) + 1);
      const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      s += y; s2 += y * y; n++;
    }
    const modal = Math.max(...counts.values());
    const mean = s / n;
    return {
      width: c.width, height: c.height, colours: counts.size,
      nonModal: 1 - modal / n, sd: Math.sqrt(Math.max(0, s2 / n - mean * mean)),
    };
  });
}

export const DIST = process.env.SYNTHSCOPE_DIST ?? new URL('../../dist', import.meta.url).pathname;
export const ARTIFACTS = new URL('./artifacts', import.meta.url).pathname;

/** Median of numbers (the benchmarks' summary of repeated runs on a noisy machine). */
export const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
