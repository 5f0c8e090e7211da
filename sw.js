// Synthscope's service worker: keeps the app shell (HTML, JS, wasm, CSS) so that a second visit
// works offline. Trunk gives the JS/wasm/CSS content-hashed names, so those are served from the
// cache first; the page itself is fetched from the network first (to pick up new builds) and
// falls back to the cache offline. Model weights are cached separately by the app (weights.rs),
// after their SHA-256 is checked.
const SHELL = 'synthscope-shell-v1';
// The compute worker's files: trunk cannot hash their names (the app names them at runtime), so
// they are precached by name and fetched network-first, like the page, to pick up new builds.
const WORKER_FILES = ['synthscope-worker_loader.js', 'synthscope-worker.js', 'synthscope-worker_bg.wasm'];

// On install, keep the page and every script, wasm and stylesheet it references, so that even the
// visit right after the first one works offline.
self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL);
    const page = await fetch('./', { cache: 'no-cache' });
    const html = await page.clone().text();
    const assets = [...html.matchAll(/(?:href|src)="([^"]+\.(?:js|wasm|css))"/g)].map((m) => m[1]);
    await cache.put('./', page);
    await cache.addAll([...assets, ...WORKER_FILES]);
    await self.skipWaiting();
  })());
});
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname.includes('/public/models/')) return; // the app caches weights itself
  const networkFirst = request.mode === 'navigate' || url.pathname.endsWith('/') || url.pathname.endsWith('.html')
    || WORKER_FILES.some((f) => url.pathname.endsWith('/' + f));
  event.respondWith((async () => {
    const cache = await caches.open(SHELL);
    if (networkFirst) {
      try {
        const fresh = await fetch(request);
        if (fresh.ok) await cache.put(request, fresh.clone());
        return fresh;
      } catch (offline) {
        const cached = await cache.match(request, { ignoreSearch: true });
        if (cached) return cached;
        throw offline;
      }
    }
    const cached = await cache.match(request);
    if (cached) return cached;
    const fresh = await fetch(request);
    if (fresh.ok) await cache.put(request, fresh.clone());
    return fresh;
  })());
});
