// Shared HTTP client for classcast pages (editor now; board and teacher console later).
//
// - Reads /config.json once for the list of API hosts and the request timeout.
// - Failover: hosts are shuffled; one host is used until it fails (network error,
//   timeout or 5xx), then the next one. Retriable requests (GET, or a command that
//   carries its own id and passes {retry: true}) try each host at most once per round
//   and, after a failed round, wait with exponential backoff plus jitter while an
//   "Offline — retrying" indicator is shown. Other requests report the failure.
// - Session: bearer token in localStorage, renewed from response headers, and a
//   redirect to /login on 401.

import { tr } from './i18n.js';

export const SESSION_KEY = 'classcast.session';
const DEFAULT_CONFIG = { api_hosts: [''], request_timeout_ms: 10000 };
const BACKOFF_START_MS = 1000;
const BACKOFF_MAX_MS = 30000;

export class ApiError extends Error {
  constructor(status, error = {}, headers = new Headers()) {
    super(error.message || `Request failed (${status})`);
    this.name = 'ApiError';
    this.status = status; // 0 means the server could not be reached
    this.code = error.code || (status === 0 ? 'network_error' : 'http_' + status);
    this.fields = error.fields || {};
    this.error = error; // the parsed error object, e.g. current_version on 412
    this.headers = headers;
    const retryAfter = Number.parseInt(headers.get('Retry-After') ?? '', 10);
    this.retryAfter = Number.isFinite(retryAfter) ? retryAfter : null;
  }
}

// ---- session ---------------------------------------------------------------

export function getSession() {
  try {
    const session = JSON.parse(localStorage.getItem(SESSION_KEY));
    if (!session?.token) return null;
    if (session.expires_at != null && Number(session.expires_at) <= Date.now()) {
      clearSession();
      return null;
    }
    return session;
  } catch {
    return null;
  }
}

export function setSession({ token, expires_at }) {
  localStorage.setItem(SESSION_KEY, JSON.stringify({ token, expires_at: expires_at ?? null }));
}

export function clearSession() {
  localStorage.removeItem(SESSION_KEY);
}

export function loginUrl(next = location.pathname + location.search) {
  return '/login?next=' + encodeURIComponent(next);
}

// ---- config and hosts ------------------------------------------------------

let configPromise = null;
let hosts = null; // shuffled copy of api_hosts
let current = 0; // index of the host in use

function loadConfig() {
  configPromise ??= fetch(new URL('/config.json', location.origin), { cache: 'no-store' })
    .then((res) => (res.ok ? res.json() : Promise.reject(new Error('config ' + res.status))))
    .then((cfg) => {
      const list = Array.isArray(cfg.api_hosts) && cfg.api_hosts.length ? cfg.api_hosts : [''];
      hosts = lastIfFailed(shuffle(list.map((h) => String(h).replace(/\/+$/, ''))));
      return { ...DEFAULT_CONFIG, ...cfg };
    })
    .catch(() => {
      // Don't remember the failure: the next request tries to load it again.
      configPromise = null;
      hosts ??= [''];
      return DEFAULT_CONFIG;
    });
  return configPromise;
}

/**
 * The API hosts and request timeout from /config.json, for clients that talk to the hosts
 * themselves (the live channel in live.js, with hostInUse/hostFailed/hostWorks). Hosts come
 * in this client's shuffled order, starting with the one it currently uses. "" means the
 * page's own origin.
 */
export async function apiConfig() {
  const cfg = await loadConfig();
  const timeout = Number(cfg.request_timeout_ms) > 0 ? Number(cfg.request_timeout_ms) : 10000;
  return {
    hosts: [...hosts.slice(current), ...hosts.slice(0, current)],
    timeoutMs: timeout,
    mediaMaxBytes: Number(cfg.media_max_bytes) > 0 ? Number(cfg.media_max_bytes) : null,
    // Where teachers go (the boards say it); null: where this page came from.
    publicUrl: typeof cfg.public_url === 'string' && cfg.public_url ? cfg.public_url : null,
    // The server mails links (password reset, confirmed addresses).
    mail: cfg.mail === true,
    // The server converts PowerPoint and OpenDocument slides (it has LibreOffice).
    officeImport: cfg.office_import === true,
  };
}

/**
 * Uploads a picture or video (POST /api/media, the file as the body) with the teacher's
 * session; resolves with the stored media ({id, media_type, size, url}). `onProgress(sent,
 * total)` follows the bytes; `signal` cancels (rejects with an AbortError). An upload is
 * safe to send again (the same bytes are the same media), so a host that cannot be reached
 * is left for the next one, as for reads.
 */
export function uploadMedia(file, options = {}) {
  return uploadFile('/api/media', file, { ...options, retry: true });
}

/**
 * Imports a lesson file, a PDF or PowerPoint or OpenDocument slides (POST
 * /api/lessons/import); resolves with the new lesson. `onPage(page, pages)` follows the PDF's
 * pages as the server draws them. Not sent again to another host when one fails mid-way: it
 * might have made the lesson already.
 */
export async function importLesson(file, options = {}) {
  // The server tells a PDF by its type, which some systems leave empty: its name says it.
  const type = isPdf(file) ? 'application/pdf' : DECK_TYPES[deckExtension(file)];
  const answer = await uploadFile('/api/lessons/import', file, { ...options, retry: false, type });
  return answer.lesson ?? answer;
}

/**
 * Draws a PDF's pages as picture slides (POST /api/slides/import) for the editor to insert;
 * resolves with `{slides}`; `onPage(page, pages)` follows the pages. Not sent again to
 * another host: it stores the pictures.
 */
export function importSlides(file, options = {}) {
  return uploadFile('/api/slides/import', file, { ...options, retry: false, type: 'application/pdf' });
}

/** Whether a chosen file is a PDF (imported as one picture slide per page). */
export function isPdf(file) {
  return file.type === 'application/pdf' || /\.pdf$/i.test(file.name);
}

/** The media types of the slides a server with LibreOffice converts, by extension. */
export const DECK_TYPES = {
  '.pptx': 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  '.odp': 'application/vnd.oasis.opendocument.presentation',
};

/** Whether a chosen file is PowerPoint or OpenDocument slides (converted, then drawn). */
export function isDeck(file) {
  return Object.values(DECK_TYPES).includes(file.type) || Boolean(DECK_TYPES[deckExtension(file)]);
}

function deckExtension(file) {
  return (/\.[a-z]+$/i.exec(file.name)?.[0] ?? '').toLowerCase();
}

// A PDF import followed page by page (`onPage`) answers a line of JSON per page and its
// result, or its error, as the last line (docs/importing.md).
const NDJSON = 'application/x-ndjson';

async function uploadFile(path, file, { onProgress = () => {}, onPage, signal, retry, type }) {
  await loadConfig();
  for (let tried = 0; tried < hosts.length; tried++) {
    const index = current;
    const result = await new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', hosts[index] + path);
      const session = getSession();
      if (session) xhr.setRequestHeader('Authorization', 'Bearer ' + session.token);
      xhr.setRequestHeader('Content-Type', type || file.type || 'application/octet-stream');
      if (onPage) xhr.setRequestHeader('Accept', NDJSON + ', application/json');
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
      let read = 0; // how much of a followed answer has been read as lines
      let last = null; // its last line that is not a page: the result or the error
      const readLines = () => {
        const text = xhr.responseText;
        for (let end = text.indexOf('\n', read); end >= 0; end = text.indexOf('\n', read)) {
          const line = parseJson(text.slice(read, end));
          read = end + 1;
          if (line?.page) onPage(line.page, line.pages);
          else last = line;
        }
      };
      const followed = () => xhr.status === 200 && xhr.getResponseHeader('Content-Type')?.startsWith(NDJSON);
      xhr.onprogress = () => {
        if (followed()) readLines();
      };
      xhr.onload = () => {
        const headers = new Headers();
        if (xhr.getResponseHeader('Retry-After')) headers.set('Retry-After', xhr.getResponseHeader('Retry-After'));
        if (followed()) {
          readLines();
          if (last && !last.error) resolve({ created: last });
          else reject(new ApiError(xhr.status, last?.error, headers));
          return;
        }
        const data = parseJson(xhr.responseText);
        if (xhr.status === 201) resolve({ created: data });
        else if (xhr.status >= 500 && retry) resolve({ failed: true });
        else reject(new ApiError(xhr.status, data?.error, headers));
      };
      xhr.onerror = () => resolve({ failed: true });
      xhr.onabort = () => reject(new DOMException('The upload was cancelled.', 'AbortError'));
      signal?.addEventListener('abort', () => xhr.abort(), { once: true });
      xhr.send(file);
    });
    if (result.created) {
      setOffline(false);
      return result.created;
    }
    markFailed(index);
    if (!retry) break;
  }
  throw new ApiError(0, { message: 'The server could not be reached.' });
}

/** `text` parsed as JSON, or null when it is not JSON (a status tells what went wrong). */
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Downloads a file the teacher's session may read (a lesson file) and hands it to the
 * browser to save as `name`, trying each host once.
 */
export async function downloadFile(path, name) {
  await loadConfig();
  for (let tried = 0; tried < hosts.length; tried++) {
    const index = current;
    let res;
    try {
      const session = getSession();
      res = await fetch(hosts[index] + path, {
        headers: session ? { Authorization: 'Bearer ' + session.token } : {},
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch {
      markFailed(index);
      continue;
    }
    if (res.status >= 500) {
      markFailed(index);
      continue;
    }
    if (!res.ok) {
      const data = await parseBody(res);
      if (res.status === 401) return goToLogin();
      throw new ApiError(res.status, data?.error, res.headers);
    }
    const disposition = res.headers.get('Content-Disposition') ?? '';
    const url = URL.createObjectURL(await res.blob());
    const link = document.createElement('a');
    link.href = url;
    link.download = /filename="([^"]+)"/.exec(disposition)?.[1] ?? name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    setOffline(false);
    return;
  }
  throw new ApiError(0, { message: 'The server could not be reached.' });
}

/**
 * Loads a stored picture or video (`path`: /api/media/…) into an <img> or <video> from the
 * API host this page uses, and from the next one when that fails, each host once: any node
 * serves any media. `onGiveUp` runs when none could. A missing file looks like a dead host to
 * an element, so no host is marked failed for the page's other requests.
 */
export function loadMedia(element, path, onGiveUp = () => {}) {
  const list = hosts ?? [''];
  const first = hosts ? current : 0;
  let tried = 0;
  element.addEventListener('error', () => {
    tried += 1;
    if (tried >= list.length) return onGiveUp();
    element.src = list[(first + tried) % list.length] + path;
  });
  element.src = list[first] + path;
}

/**
 * Fetches a stored file (`path`: /api/media/…) from the API host in use, then the next ones;
 * resolves with the first successful response.
 */
export async function fetchMedia(path, init = {}) {
  await loadConfig();
  const first = current;
  for (let tried = 0; tried < hosts.length; tried++) {
    try {
      const res = await fetch(hosts[(first + tried) % hosts.length] + path, { ...init, credentials: 'omit' });
      if (res.ok) return res;
    } catch {
      // The next host.
    }
  }
  throw new Error('media ' + path + ' could not be fetched');
}

function shuffle(list) {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

// Hosts that failed lately, remembered across the pages of this tab: a page opened after a
// host died does not try it first (its first request may be one that is not retried).
const FAILED_KEY = 'classcast.failedHosts';
const FAILED_FOR_MS = 60000;

function recentlyFailed() {
  try {
    const failed = JSON.parse(sessionStorage.getItem(FAILED_KEY) || '{}');
    const now = Date.now();
    return Object.fromEntries(Object.entries(failed).filter(([, at]) => now - at < FAILED_FOR_MS));
  } catch {
    return {};
  }
}

function lastIfFailed(list) {
  const failed = recentlyFailed();
  return [...list.filter((h) => !(h in failed)), ...list.filter((h) => h in failed)];
}

function markFailed(index) {
  try {
    sessionStorage.setItem(FAILED_KEY, JSON.stringify({ ...recentlyFailed(), [hosts[index]]: Date.now() }));
  } catch {
    // Storage may be off; failing over within the page still works.
  }
  // Only advance if nobody else already moved on from this host.
  if (index === current) current = (current + 1) % hosts.length;
}

// The live channel (live.js) moves between the same hosts with the same cursor and the same
// memory of failed hosts as requests do, so both stay on one healthy host.

/** The host in use ("" is this page's origin). */
export function hostInUse() {
  return hosts?.[current] ?? '';
}

/** `host` did not answer: remember it for the tab, and move on from it if it is in use. */
export function hostFailed(host) {
  const index = hosts?.indexOf(host) ?? -1;
  if (index >= 0) markFailed(index);
}

/** `host` answers: use it from now on. */
export function hostWorks(host) {
  const index = hosts?.indexOf(host) ?? -1;
  if (index >= 0) current = index;
}

// ---- offline indicator -----------------------------------------------------

let offlineEl = null;

function setOffline(offline) {
  if (!offline && !offlineEl) return;
  if (!offlineEl) {
    offlineEl = document.createElement('div');
    offlineEl.className = 'offline-indicator';
    offlineEl.setAttribute('role', 'status');
    offlineEl.dataset.i18n = 'status.offline'; // re-translated on language change
    document.body.append(offlineEl);
  }
  offlineEl.textContent = tr('status.offline', 'Offline — retrying');
  offlineEl.hidden = !offline;
}

/**
 * How long to wait before round `attempt` (0, 1, …) of retries: doubling from 1 s to 30 s,
 * at least what `Retry-After` asked. Shared by requests, the live channel and the board.
 */
export function backoffDelay(attempt, retryAfterSeconds) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** attempt);
  // Jitter spreads out the retries of a whole classroom of devices.
  const delay = base / 2 + Math.random() * (base / 2);
  return Math.max(delay, (retryAfterSeconds ?? 0) * 1000);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- requests --------------------------------------------------------------

/** Fetch and read the body, both under one timeout (a stalled body counts as a failure). */
async function fetchWithTimeout(url, init, timeoutMs) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const res = await fetch(url, { ...init, signal: controller.signal });
    return { res, data: await parseBody(res) };
  } finally {
    clearTimeout(timer);
  }
}

async function parseBody(res) {
  if (res.status === 204 || res.status === 205) return null;
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text; // e.g. an HTML error page from a proxy
  }
}

function storeRenewedToken(headers) {
  const token = headers.get('X-Classcast-Token');
  if (token) setSession({ token, expires_at: Number(headers.get('X-Classcast-Token-Expires')) || null });
}

/**
 * Low-level request. Options:
 *   body        – JSON-serialisable request body
 *   ifMatch     – version for optimistic locking (sent as a quoted ETag)
 *   auth        – send the bearer token (default true)
 *   redirectOn401 – clear the session and go to /login on 401 (default: same as auth)
 *   retry       – retry automatically across hosts and rounds (default: GET only)
 *   token       – bearer token to send instead of the teacher's session (the board page's
 *                 own token); a 401 is then reported, never redirected
 */
export async function request(method, path, options = {}) {
  const {
    body,
    ifMatch,
    token = null,
    auth = true,
    redirectOn401 = auth && !token,
    retry = method === 'GET',
  } = options;
  if (auth && redirectOn401 && !token && !getSession()) return goToLogin(); // no need to ask the server
  const cfg = await loadConfig();
  const timeout = Number(cfg.request_timeout_ms) > 0 ? Number(cfg.request_timeout_ms) : 10000;

  for (let attempt = 0; ; attempt++) {
    let retryAfter = null;
    for (let tried = 0; tried < hosts.length; tried++) {
      const index = current;
      const headers = { Accept: 'application/json' };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      if (ifMatch != null) headers['If-Match'] = quoteEtag(ifMatch);
      const session = token ? { token } : auth ? getSession() : null;
      if (session) headers.Authorization = 'Bearer ' + session.token;

      let res, data;
      try {
        ({ res, data } = await fetchWithTimeout(
          hosts[index] + path,
          {
            method,
            headers,
            body: body === undefined ? undefined : JSON.stringify(body),
            credentials: 'omit', // the bearer token is the only credential
            cache: 'no-store',
          },
          timeout,
        ));
      } catch {
        markFailed(index);
        if (!retry) throw new ApiError(0, { message: 'The server could not be reached.' });
        continue;
      }

      if (!token) storeRenewedToken(res.headers); // renewals are for the teacher's session

      if (res.status >= 500) {
        markFailed(index);
        if (!retry) throw new ApiError(res.status, data?.error, res.headers);
        retryAfter = new ApiError(res.status, data?.error, res.headers).retryAfter ?? retryAfter;
        continue;
      }

      setOffline(false);
      if (res.ok) return { status: res.status, headers: res.headers, body: data };

      if (res.status === 401 && redirectOn401) return goToLogin();
      throw new ApiError(res.status, data?.error, res.headers);
    }

    setOffline(true);
    await sleep(backoffDelay(attempt, retryAfter));
  }
}

function goToLogin() {
  clearSession();
  location.assign(loginUrl());
  return new Promise(() => {}); // the page is going away; keep callers from reacting
}

function quoteEtag(version) {
  const v = String(version);
  return v.startsWith('"') || v.startsWith('W/') ? v : `"${v}"`;
}

export const api = {
  get: (path, options) => request('GET', path, options),
  post: (path, body, options) => request('POST', path, { ...options, body }),
  put: (path, body, options) => request('PUT', path, { ...options, body }),
  del: (path, options) => request('DELETE', path, options),
};

export default api;
