// The board's service worker (registered by /board, for /board only): keeps the board page,
// its assets and the media it showed or fetched ahead in a cache, so a board that loses the
// network, or is reloaded without it, still shows the slide it was showing.
//
// The page and /config.json: the network first, the cache when it does not answer.
// Assets (hashed, immutable) and media (content-addressed, immutable): the cache first. A
// video asks for ranges: they are cut from the whole file when the cache holds it.

const CACHE = 'classcast-board-1'; // board.js tidies it by the same name

// What the board page needs to start without the network, kept from the moment it is
// installed (the page's own first requests came before this worker could see them).
const SHELL = [
  '/board',
  '{{assets}}/js/board.js',
  '{{assets}}/js/api.js',
  '{{assets}}/js/i18n.js',
  '{{assets}}/js/live.js',
  '{{assets}}/js/slides.js',
  '{{assets}}/css/board.css',
  '{{assets}}/i18n/en.json',
  '{{assets}}/i18n/nl.json',
  '{{assets}}/favicon.svg',
];

self.addEventListener('install', (event) => {
  self.skipWaiting();
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)));
});
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  // Media come from any API host (any node serves any media); the page only from its own.
  if (url.pathname.startsWith('/api/media/')) {
    event.respondWith(cacheFirst(request));
  } else if (url.origin !== self.location.origin) {
    return;
  } else if (url.pathname.startsWith('/assets/')) {
    event.respondWith(cacheFirst(request));
  } else if (url.pathname === '/board' || url.pathname === '/config.json') {
    event.respondWith(networkFirst(request));
  }
});

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (err) {
    const cached = await cache.match(request);
    if (cached) return cached;
    throw err;
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const whole = new Request(request.url); // the whole file, whatever range was asked
  const range = request.headers.get('Range');
  const cached = await cache.match(whole);
  if (cached) return range ? slice(cached, range) : cached;
  const response = await fetch(request);
  if (response.status === 200) await cache.put(whole, response.clone());
  return response;
}

/** A `206` with the bytes `range` asks for, cut from a cached whole file. */
async function slice(response, range) {
  const blob = await response.blob();
  const size = blob.size;
  const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
  let start = m && m[1] !== '' ? Number(m[1]) : NaN;
  let end = m && m[2] !== '' ? Number(m[2]) : size - 1;
  if (m && m[1] === '' && m[2] !== '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  }
  if (!Number.isFinite(start) || start >= size || start > end) {
    return new Response(null, { status: 416, headers: { 'Content-Range': `bytes */${size}` } });
  }
  end = Math.min(end, size - 1);
  return new Response(blob.slice(start, end + 1), {
    status: 206,
    headers: {
      'Content-Type': response.headers.get('Content-Type') ?? 'application/octet-stream',
      'Content-Range': `bytes ${start}-${end}/${size}`,
      'Content-Length': String(end - start + 1),
      'Accept-Ranges': 'bytes',
    },
  });
}
