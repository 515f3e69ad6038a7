// The classroom display (/board): claims an identity, shows its pairing code while idle and
// the presented slide while a teacher presents. Whatever happens (server away, bad data)
// it keeps showing something sensible: never a browser error, never a blank page.

import { api, apiConfig, backoffDelay, fetchMedia } from './api.js';
import { fillLanguageSelect, getLanguage, initI18n, tr } from './i18n.js';
import { compareVersions, createLive } from './live.js';
import { fitText, renderSlide, timersElsewhere } from './slides.js';

const IDENTITY_KEY = 'classcast.board';
const STATE_KEY = 'classcast.board.state'; // the last state shown, for a reload without network
const CODE_ROTATE_BEFORE_MS = 60000; // ask for a new code a minute before the old one expires
const CODE_RETRY_MS = 15000;
const CURSOR_HIDE_MS = 3000;
const OFFLINE_GRACE_MS = 4000; // a short reconnect is not worth an indicator

const $ = (id) => document.getElementById(id);
const screens = { start: $('screen-start'), idle: $('screen-idle'), slide: $('screen-slide') };
const frame = $('slide-frame');
let teachUrl = location.origin + '/teach'; // the public address once /config.json says it

let identity = loadIdentity();
let live = null;
let state = null; // the newest board state shown
let pairing = null; // {paired_with, code} from the server
let view = { tick() {} };
let rotateTimer = null;
let lastCodeRequest = 0;
let reidentifying = false;
let reported = null; // what we last told the server: "version ready cached muted"

// A bug or a strange message must never take the picture away.
window.addEventListener('error', (e) => console.error('board:', e.message));
window.addEventListener('unhandledrejection', (e) => console.error('board:', e.reason));


// ---- identity ----------------------------------------------------------------------------

function loadIdentity() {
  try {
    const id = JSON.parse(localStorage.getItem(IDENTITY_KEY));
    return id?.board_id && id?.board_token ? id : null;
  } catch {
    return null;
  }
}

function saveIdentity(id) {
  identity = { board_id: id.board_id, board_token: id.board_token };
  localStorage.setItem(IDENTITY_KEY, JSON.stringify(identity));
}

/** A new identity from the server, retried patiently (rate limits, server away). */
async function claim() {
  for (let attempt = 0; ; attempt++) {
    try {
      const { body } = await api.post('/api/boards/claim', undefined, { auth: false, retry: true });
      saveIdentity(body);
      if (body.code) pairing = { paired_with: [], code: { code: body.code, expires_at: body.code_expires_at }, fingerprint: body.fingerprint };
      return;
    } catch (err) {
      $('start-text').textContent = tr('board.claimRetry', 'Cannot reach the classcast server yet. Trying again…');
      const wait = backoffDelay(Math.min(attempt, 5), err.retryAfter);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** The server no longer knows our token (board removed, database reset): start over. */
async function reidentify() {
  if (reidentifying) return;
  reidentifying = true;
  live?.stop();
  localStorage.removeItem(IDENTITY_KEY);
  identity = null;
  state = null;
  pairing = null;
  render();
  await claim();
  reidentifying = false;
  startLive();
  render();
}

/** Checks the stored token once at start-up and fetches who controls us. */
async function checkSelf() {
  try {
    const { body } = await api.get('/api/boards/self', { token: identity.board_token, retry: false });
    if (!pairing) {
      pairing = { paired: body.paired, paired_with: body.paired_with ?? [], code: body.code ?? null, fingerprint: body.fingerprint };
      render();
      scheduleCodeRotation();
    }
  } catch (err) {
    if (err.status === 401) reidentify();
    // Anything else: the live channel will tell us soon enough.
  }
}

// ---- the last state, for a reload without network -----------------------------------------

function saveState() {
  try {
    localStorage.setItem(STATE_KEY, JSON.stringify({ board: identity?.board_id, state }));
  } catch {
    // storage full or off: the live channel still works
  }
}

/** The state this board showed last, if it was this board's. */
function savedState() {
  try {
    const saved = JSON.parse(localStorage.getItem(STATE_KEY));
    return saved?.board && saved.board === identity?.board_id ? saved.state : null;
  } catch {
    return null;
  }
}

// ---- live channel ------------------------------------------------------------------------

function startLive() {
  live = createLive({ role: 'board', token: () => identity?.board_token ?? '' });
  live.on('status', showConnection);
  live.on('welcome', () => state && reportRendered(true)); // the server may have missed it while we were away
  live.on('state', ({ state: next }) => {
    const wasPresenting = presenting();
    state = next;
    saveState();
    render();
    if (wasPresenting && !presenting()) {
      scheduleCodeRotation();
      keepOnlyMedia([]);
    }
  });
  live.on('pairing', (msg) => {
    const before = new Set(pairing?.paired_with ?? []);
    pairing = { paired: msg.paired, paired_with: msg.paired_with ?? [], code: msg.code ?? null, fingerprint: msg.fingerprint };
    if (msg.paired === false) keepOnlyMedia([]); // unpaired: nothing a teacher showed stays
    const added = pairing.paired_with.filter((name) => !before.has(name));
    if (added.length && before.size + added.length === pairing.paired_with.length) confirmPairing(added);
    render();
    scheduleCodeRotation();
  });
  live.on('unauthorized', reidentify);
  // The server was upgraded past our protocol: fetch the new page, at a random moment so
  // not every board in the school reloads at once.
  live.on('outdated', () => setTimeout(() => location.reload(), 5000 + Math.random() * 25000));
  live.start();
}

/**
 * Tells the server which state we show, and whether we hold the media of the next slides
 * (`ready`) and of the whole lesson (`cached`): the teacher's console shows both. Sent again
 * when either changes.
 */
function reportRendered(force = false) {
  if (!state || !live) return;
  const version = state.version;
  const ready = holds(state.upcoming_media ?? []);
  const cached = presenting() && lessonMedia.revision === state.lesson.revision && holds(lessonMedia.ids);
  const muted = playsWithoutSound();
  // The hint to tap stays with the video that needs it, not on every later slide.
  $('sound-hint').hidden = !muted;
  const report = `${version} ${ready} ${cached} ${muted}`;
  if (!force && reported === report) return;
  // After the browser has painted it, the slide really is on screen.
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      if (!state || compareVersions(state.version, version) !== 0) return; // a newer one is coming
      if (live.message({ type: 'rendered', version: Number(version), ready, cached, muted })) reported = report;
    }),
  );
}

let offlineTimer = null;
function showConnection({ transport, host }) {
  const status = $('board-status');
  // Which API host the board is live on: for IT staff and tests (devtools), never shown.
  document.body.dataset.liveHost = host ?? '';
  clearTimeout(offlineTimer);
  if (transport === 'websocket' || transport === 'fallback') {
    status.hidden = true;
    return;
  }
  offlineTimer = setTimeout(() => {
    status.textContent = tr('live.offline', 'Offline — reconnecting');
    status.hidden = false;
  }, transport === 'offline' ? 0 : OFFLINE_GRACE_MS);
}

// ---- pairing code ------------------------------------------------------------------------

const presenting = () => !!state?.lesson;
const serverNow = () => (live ? live.serverNow() : Date.now());

function currentCode() {
  const code = pairing?.code;
  return code?.code && (code.expires_at == null || code.expires_at > serverNow()) ? code : null;
}

function scheduleCodeRotation() {
  clearTimeout(rotateTimer);
  if (presenting() || !identity) return;
  const code = currentCode();
  const due = code?.expires_at != null ? code.expires_at - serverNow() - CODE_ROTATE_BEFORE_MS : code ? null : 0;
  if (due == null) return; // a code without expiry needs no rotation
  rotateTimer = setTimeout(requestCode, Math.max(0, due, lastCodeRequest + CODE_RETRY_MS - Date.now()));
}

async function requestCode() {
  if (presenting() || !identity) return;
  lastCodeRequest = Date.now();
  // Check again later in any case: if no new code arrived, this asks once more.
  rotateTimer = setTimeout(scheduleCodeRotation, CODE_RETRY_MS);
  if (live?.transport === 'websocket' && live.message({ type: 'code' })) return; // a `pairing` message answers
  try {
    const { body } = await api.post('/api/boards/code', undefined, { token: identity.board_token });
    pairing = { paired: pairing?.paired, paired_with: pairing?.paired_with ?? [], code: body, fingerprint: pairing?.fingerprint };
    render();
    scheduleCodeRotation();
  } catch (err) {
    if (err.status === 401) reidentify();
  }
}

// ---- drawing -----------------------------------------------------------------------------

function show(name) {
  for (const [key, el] of Object.entries(screens)) el.hidden = key !== name;
}

function render() {
  try {
    if (presenting()) renderPresenting();
    else if (pairing && identity) renderIdle();
    else show('start');
    $('blank').hidden = !(presenting() && state.blanked);
  } catch (err) {
    console.error('board render:', err); // keep whatever was on screen
  }
  if (state) reportRendered();
}

function renderPresenting() {
  show('slide');
  view = renderSlide(frame, state);
  // The corner line (presenter, slide number) sits over the slide: in its theme too.
  screens.slide.dataset.theme = frame.dataset.theme;
  view.tick(serverNow());
  holdLesson(state.lesson.revision);
  const presenter = state.presenter?.name;
  $('presenter').textContent = presenter ? tr('board.controlledBy', 'Controlled by {names}', { names: presenter }) : '';
  const total = state.lesson.slide_count;
  $('slide-pos').textContent = total ? `${(state.slide_index ?? 0) + 1} / ${total}` : '';
}

// The media of the next slides is fetched ahead into the browser's cache (answers are
// immutable and cacheable for a year; the service worker keeps them too), so a slide change
// on a slow school line is instant; then the rest of the lesson, so the board can go on
// without a network. One file at a time, the next slide's first: on a slow line two files
// fetched together would both arrive late. Read as a stream and dropped: a video is cached
// without being held in memory.
// `/board?preload=off` fetches nothing ahead: only to measure what fetching ahead is worth
// (bench/slides); a classroom never wants it.
const PRELOAD = new URLSearchParams(location.search).get('preload') !== 'off';
const held = new Set(); // ids fully fetched
const holds = (ids) => ids.every((id) => held.has(id));
let wanted = []; // ids still to fetch, in order
let inFlight = null; // the id being fetched

/** Fetch these, in this order, before anything wanted earlier. */
function fetchAhead(ids = []) {
  if (!PRELOAD) return;
  wanted = [...new Set(ids)].filter((id) => !held.has(id) && id !== inFlight);
  pump();
}

async function pump() {
  if (inFlight || !wanted.length) return;
  const id = wanted.shift();
  inFlight = id;
  try {
    const res = await fetchMedia('/api/media/' + encodeURIComponent(id), { priority: 'low' });
    const reader = res.body.getReader();
    while (!(await reader.read()).done);
    held.add(id);
    reportRendered();
  } catch {
    // Asked for again with the next state.
  } finally {
    inFlight = null;
  }
  pump();
}

// Every media of the presented revision (GET /api/boards/self/media), read once per revision.
let lessonMedia = { revision: null, ids: [] };
let listing = null; // the revision whose list is being read
async function holdLesson(revision) {
  const rest = () => (lessonMedia.revision === revision ? lessonMedia.ids : []);
  fetchAhead([...(state?.upcoming_media ?? []), ...rest()]);
  if (PRELOAD && identity && lessonMedia.revision !== revision && listing !== revision) {
    listing = revision;
    try {
      const { body } = await api.get('/api/boards/self/media', { token: identity.board_token, retry: false });
      lessonMedia = { revision: body.revision, ids: body.media ?? [] };
      keepOnlyMedia(lessonMedia.ids);
    } catch {
      // Read again with the next state.
    } finally {
      listing = null;
    }
    if (state?.lesson?.revision !== revision) return;
    fetchAhead([...(state?.upcoming_media ?? []), ...rest()]);
  }
  reportRendered();
}

// Browsers play a video with sound only after someone has touched the page. The board plays
// it muted meanwhile, says so to the teacher's console (which offers to try again: a board
// set up to allow sound plays it then) and asks for one tap on a touch screen; after a tap,
// every video has sound.
function playsWithoutSound() {
  const video = frame.querySelector('video.slide-media');
  return !!video && video.muted && video.dataset.mutedBy === 'browser';
}
for (const event of ['classcast:muted', 'classcast:sound']) frame.addEventListener(event, () => reportRendered());
for (const gesture of ['pointerdown', 'keydown']) {
  document.addEventListener(gesture, () => {
    for (const video of frame.querySelectorAll('video.slide-media')) {
      video.muted = false;
      delete video.dataset.mutedBy;
      if (!video.paused) video.play().catch(() => {});
    }
    reportRendered();
  });
}

/**
 * The service worker's cache (sw.js) keeps the media of the lesson the board presents and
 * no other: an earlier lesson's pictures, or those of a teacher who has unpaired the board,
 * do not stay on it, and the cache does not grow lesson after lesson.
 */
const BOARD_CACHE = 'classcast-board-1';
async function keepOnlyMedia(ids) {
  if (!('caches' in window)) return;
  try {
    const keep = new Set(ids);
    const cache = await caches.open(BOARD_CACHE);
    for (const request of await cache.keys()) {
      const id = new URL(request.url).pathname.match(/^\/api\/media\/([0-9a-f]{64})/)?.[1];
      if (id && !keep.has(id)) await cache.delete(request);
    }
  } catch {
    // No cache to tidy (a private window, say).
  }
}

/** The teacher who just paired sees it on the board too, for a while. */
let pairedNoticeTimer = null;
function confirmPairing(names) {
  const notice = $('paired-notice');
  notice.textContent = tr('board.pairedNow', 'Paired with {names}', { names: listFormat(names) });
  notice.hidden = false;
  clearTimeout(pairedNoticeTimer);
  pairedNoticeTimer = setTimeout(() => (notice.hidden = true), 15000);
}

function renderIdle() {
  show('idle');
  const print = pairing.fingerprint;
  $('fingerprint').textContent = print ? tr('board.fingerprint', 'This screen: {fingerprint}', { fingerprint: print }) : '';
  const names = pairing.paired_with ?? [];
  // Names stay off the screen when the teacher chose so (`paired` without names).
  const paired = pairing.paired ?? names.length > 0;
  const code = currentCode();
  $('idle-pair').hidden = paired;
  $('idle-ready').hidden = !paired;
  if (paired) {
    $('controlled-by').textContent = names.length
      ? tr('board.controlledBy', 'Controlled by {names}', { names: listFormat(names) })
      : tr('board.pairedNoNames', 'Paired with a teacher');
    fillTemplate($('add-instruction'), tr('board.addInstruction', 'Another teacher? Go to {url} and enter', {}), teachUrl);
    showCode($('pair-code-small'), code);
    $('pair-code-small').previousElementSibling.hidden = !code;
  } else {
    fillTemplate($('pair-instruction'), tr('board.pairInstruction', 'Go to {url} and enter this code', {}), teachUrl);
    showCode($('pair-code'), code);
    $('pair-code-wait').hidden = !!code;
    showQr(code);
  }
}

/** The QR code of the pairing link for `code`, fetched once per code (and address). */
let qrFor = null;
let qrUrl = null;
async function showQr(code) {
  const img = $('pair-qr');
  const wanted = code?.code ? code.code + ' ' + teachUrl : null;
  if (wanted === qrFor) return;
  qrFor = wanted;
  if (!wanted) {
    img.hidden = true;
    $('pair-qr-hint').hidden = true;
    return;
  }
  try {
    const path = '/api/boards/self/qr?url=' + encodeURIComponent(teachUrl);
    const { body } = await api.get(path, { token: identity.board_token, retry: false });
    if (qrFor !== wanted || typeof body !== 'string') return;
    if (qrUrl) URL.revokeObjectURL(qrUrl);
    qrUrl = URL.createObjectURL(new Blob([body], { type: 'image/svg+xml' }));
    img.src = qrUrl;
    img.alt = tr('board.qrAlt', 'QR code that opens {url} with this code filled in', { url: teachUrl });
    img.hidden = false;
    $('pair-qr-hint').hidden = false;
  } catch {
    // The digits are enough; the next code tries again.
    if (qrFor === wanted) qrFor = null;
  }
}

/** "483 920": two groups of tabular digits; read out digit by digit. */
function showCode(el, code) {
  const digits = code?.code ? String(code.code) : '';
  if (!digits) {
    el.replaceChildren();
    el.removeAttribute('aria-label');
    return;
  }
  const mid = Math.ceil(digits.length / 2);
  const group = (s) => Object.assign(document.createElement('span'), { textContent: s });
  el.replaceChildren(group(digits.slice(0, mid)), group(digits.slice(mid)));
  el.setAttribute('aria-label', digits.split('').join(' '));
}

/** Put `url` in bold where the translated sentence says {url}; the rest stays plain text. */
function fillTemplate(el, template, url) {
  const [before, after = ''] = template.split('{url}');
  const strong = document.createElement('strong');
  strong.textContent = url;
  el.replaceChildren(before, strong, after);
}

function listFormat(names) {
  try {
    return new Intl.ListFormat(getLanguage(), { style: 'long', type: 'conjunction' }).format(names);
  } catch {
    return names.join(', ');
  }
}

// ---- screen handling ---------------------------------------------------------------------

function setupFullscreen() {
  const button = $('fullscreen');
  const enter = () => {
    if (document.fullscreenElement || !document.documentElement.requestFullscreen) return;
    document.documentElement.requestFullscreen({ navigationUI: 'hide' }).catch(() => {});
  };
  const update = () => (button.hidden = !!document.fullscreenElement || !document.documentElement.requestFullscreen);
  button.addEventListener('click', enter);
  // The first touch or click anywhere is the user gesture browsers require.
  document.addEventListener('pointerdown', enter, { once: true });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'f' || e.key === 'F') enter();
  });
  document.addEventListener('fullscreenchange', update);
  update();
}

function setupCursor() {
  let timer = null;
  const hide = () => document.body.classList.add('cursor-hidden');
  const wake = () => {
    document.body.classList.remove('cursor-hidden');
    clearTimeout(timer);
    timer = setTimeout(hide, CURSOR_HIDE_MS);
  };
  document.addEventListener('pointermove', wake);
  wake();
}

/** Keep the display from going to sleep during a lesson (where the browser allows it). */
function setupWakeLock() {
  if (!navigator.wakeLock) return;
  const request = () => navigator.wakeLock.request('screen').catch(() => {});
  request();
  document.addEventListener('visibilitychange', () => document.visibilityState === 'visible' && request());
}

function setupLanguage() {
  fillLanguageSelect($('board-language'));
  document.addEventListener('languagechange', render);
}

// ---- start -------------------------------------------------------------------------------

async function main() {
  await initI18n().catch(() => {}); // the English in the page still reads fine
  setupLanguage();
  setupFullscreen();
  setupCursor();
  setupWakeLock();
  setInterval(() => {
    try {
      view.tick(serverNow());
      const elsewhere = presenting() ? timersElsewhere(state, serverNow()).join(' · ') : '';
      if ($('timers-elsewhere').textContent !== elsewhere) $('timers-elsewhere').textContent = elsewhere;
    } catch {
      // a timer that cannot draw must not stop the next one
    }
  }, 200);
  window.addEventListener('resize', () => frame.firstElementChild && fitText(frame.firstElementChild));

  // Cached by the service worker, the page and what it showed open without the network too.
  navigator.serviceWorker?.register('/sw.js', { scope: '/board' }).catch(() => {});
  apiConfig().then(({ publicUrl }) => {
    if (!publicUrl) return;
    teachUrl = publicUrl + '/teach';
    render();
  });
  if (identity) {
    state = savedState(); // shown until the live channel says otherwise
    checkSelf();
  } else await claim();
  render();
  scheduleCodeRotation();
  startLive();
}

main();
