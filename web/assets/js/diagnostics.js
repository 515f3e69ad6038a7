// Connection check (/diagnostics) for school IT: per API host, can this browser reach it,
// how far off is its clock, does a WebSocket upgrade get through, does the HTTP fallback
// answer. The results end up in a plain-text report to copy and send to support.

import { wsUrl } from './live.js';
import { $, announce, h, initPage, t } from './ui.js';

// Opened from a board's screen: the way back is one tap, not the teachers' sign-in.
if (new URLSearchParams(location.search).get('from') === 'board') {
  document.getElementById('back-to-board').hidden = false;
}

const SAMPLES = 5;
const TIMEOUT_MS = 10000;

let results = []; // [{host, checks: {name: {result, text}}}]
let hosts = [''];
let configNote = null;
let runId = 0;

// ---- checks ------------------------------------------------------------------------------

async function loadHosts() {
  try {
    const res = await timedFetch(new URL('/config.json', location.origin).href);
    if (!res.ok) throw new Error('HTTP ' + res.status);
    const cfg = await res.json();
    configNote = null;
    const list = Array.isArray(cfg.api_hosts) && cfg.api_hosts.length ? cfg.api_hosts : [''];
    return list.map((x) => String(x).replace(/\/+$/, ''));
  } catch (err) {
    configNote = t('diag.configFailed', { reason: err.message });
    return [''];
  }
}

function timedFetch(url, init = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  return fetch(url, { cache: 'no-store', credentials: 'omit', ...init, signal: controller.signal }).finally(() =>
    clearTimeout(timer),
  );
}

const reason = (err) => (err?.name === 'AbortError' ? t('diag.timeout', { seconds: TIMEOUT_MS / 1000 }) : t('diag.networkError'));

async function checkReachable(host) {
  const times = [];
  let status = null;
  let version = null;
  for (let i = 0; i < SAMPLES; i++) {
    const start = performance.now();
    try {
      const res = await timedFetch(host + '/healthz');
      const text = await res.text();
      status = res.status;
      try {
        version = JSON.parse(text).version ?? version;
      } catch {
        // an older server, or a proxy's page: no version to report
      }
      if (!res.ok) return { result: 'fail', text: t('diag.httpError', { status }) };
      times.push(Math.round(performance.now() - start));
    } catch (err) {
      return { result: 'fail', text: reason(err) };
    }
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const text = t('diag.reachableOk', { status, median, samples: times.join(', ') });
  return { result: 'ok', text: version ? `${text} · classcast ${version}` : text };
}

async function checkClock(host) {
  const t0 = Date.now();
  try {
    const res = await timedFetch(host + '/api/live/time');
    const t1 = Date.now();
    if (!res.ok) return { result: 'fail', text: t('diag.httpError', { status: res.status }) };
    const body = await res.json();
    if (typeof body.server_time !== 'number') return { result: 'fail', text: t('diag.badAnswer') };
    const offset = Math.round(body.server_time - (t0 + t1) / 2);
    const text = t('diag.clockOffset', { offset: (offset >= 0 ? '+' : '') + offset, rtt: t1 - t0 });
    // classcast corrects for the offset; a big one still hints at a wrong clock on this device.
    return Math.abs(offset) > 5000 ? { result: 'warn', text: text + ' ' + t('diag.clockWarn') } : { result: 'ok', text };
  } catch (err) {
    return { result: 'fail', text: reason(err) };
  }
}

/** Opens /ws and sends a ping as its first message: the server closes with 4401 (not a hello). */
function checkWebSocket(host) {
  return new Promise((resolve) => {
    const start = performance.now();
    let opened = null;
    let ws;
    try {
      ws = new WebSocket(wsUrl(host));
    } catch (err) {
      resolve({ result: 'fail', text: t('diag.wsBlocked', { reason: err.message }) });
      return;
    }
    const timer = setTimeout(() => {
      try {
        ws.close();
      } catch {
        // ignore
      }
      resolve(
        opened != null
          ? { result: 'ok', text: t('diag.wsOk', { ms: opened }) }
          : { result: 'fail', text: t('diag.timeout', { seconds: TIMEOUT_MS / 1000 }) },
      );
    }, TIMEOUT_MS);
    ws.onopen = () => {
      opened = Math.round(performance.now() - start);
      ws.send(JSON.stringify({ type: 'ping', t0: Date.now() }));
    };
    ws.onclose = (event) => {
      clearTimeout(timer);
      if (opened == null) {
        resolve({ result: 'fail', text: t('diag.wsFailed', { code: event.code }) });
      } else if (event.code === 4401) {
        resolve({ result: 'ok', text: t('diag.wsOk', { ms: opened }) + ' ' + t('diag.wsClosedExpected') });
      } else {
        resolve({ result: 'ok', text: t('diag.wsOk', { ms: opened }) + ' ' + t('diag.wsClosedOther', { code: event.code }) });
      }
    };
    ws.onerror = () => {}; // onclose reports
  });
}

/** A token this device holds (the teacher's session, or the board's identity), and its role. */
function storedToken() {
  for (const [key, field, role] of [
    ['classcast.session', 'token', 'teacher'],
    ['classcast.board', 'board_token', 'board'],
  ]) {
    try {
      const token = JSON.parse(localStorage.getItem(key) || 'null')?.[field];
      if (token) return { token, role };
    } catch {
      // not ours, or storage off
    }
  }
  return null;
}

/**
 * Opens the fallback's event stream (/api/live/events) and waits for its first event, the
 * way a board or console behind a proxy that blocks WebSockets would: a proxy that buffers
 * streams shows here as a timeout. Needs this device's sign-in or board token; without one,
 * only that the route answers is checked.
 */
async function checkFallback(host) {
  if (typeof ReadableStream === 'undefined' || typeof TextDecoderStream === 'undefined') {
    return { result: 'fail', text: t('diag.noStreams') };
  }
  const held = storedToken();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  const start = performance.now();
  try {
    const res = await fetch(host + '/api/live/events?role=' + (held?.role ?? 'board'), {
      headers: held ? { Authorization: 'Bearer ' + held.token, Accept: 'text/event-stream' } : { Accept: 'text/event-stream' },
      cache: 'no-store',
      credentials: 'omit',
      signal: controller.signal,
    });
    if (!held) {
      await res.text();
      return res.status === 401
        ? { result: 'warn', text: t('diag.fallbackNoToken') }
        : { result: 'fail', text: t('diag.httpError', { status: res.status }) };
    }
    if (!res.ok) return { result: 'fail', text: t('diag.httpError', { status: res.status }) };
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let seen = '';
    while (!/^data:/m.test(seen)) {
      const { value, done } = await reader.read();
      if (done) return { result: 'fail', text: t('diag.streamEnded') };
      seen += value;
    }
    return { result: 'ok', text: t('diag.streamOk', { ms: Math.round(performance.now() - start) }) };
  } catch (err) {
    return { result: 'fail', text: err?.name === 'AbortError' ? t('diag.streamTimeout', { seconds: TIMEOUT_MS / 1000 }) : reason(err) };
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

const CHECKS = [
  ['reachable', checkReachable],
  ['clock', checkClock],
  ['websocket', checkWebSocket],
  ['fallback', checkFallback],
];

async function run() {
  const id = ++runId;
  const runButton = $('#run');
  runButton.disabled = true;
  $('#diag-status').hidden = false;
  $('#diag-status').textContent = t('diag.running');
  hosts = await loadHosts();
  results = hosts.map((host) => ({ host, checks: {} }));
  renderResults();
  renderReport();
  // One host after the other, so latencies are not skewed by each other.
  for (const entry of results) {
    for (const [name, check] of CHECKS) {
      entry.checks[name] = { result: 'running', text: t('diag.checking') };
      renderResults();
      entry.checks[name] = await check(entry.host);
      if (id !== runId) return;
      renderResults();
    }
  }
  renderReport();
  runButton.disabled = false;
  const failed = results.some((r) => Object.values(r.checks).some((c) => c.result === 'fail'));
  const summary = failed ? t('diag.doneProblems') : t('diag.doneOk');
  $('#diag-status').textContent = summary;
  announce(summary);
}

// ---- output ------------------------------------------------------------------------------

const hostLabel = (host) => (host ? host : `${location.origin} ${t('diag.thisOrigin')}`);

function renderResults() {
  $('#diag-list').replaceChildren(
    ...results.map((entry, i) =>
      h(
        'li',
        { class: 'diag-host card' },
        h('h2', { text: `${i + 1}. ${hostLabel(entry.host)}` }),
        h(
          'dl',
          { class: 'diag-checks' },
          ...CHECKS.flatMap(([name]) => {
            const check = entry.checks[name];
            return [
              h('dt', { text: t('diag.check.' + name) }),
              h('dd', { class: 'diag-result', dataset: { result: check?.result ?? 'running' }, text: check?.text ?? '…' }),
            ];
          }),
        ),
      ),
    ),
  );
}

function reportText() {
  const yes = (ok) => t(ok ? 'diag.yes' : 'diag.no');
  const features = [
    `WebSocket ${yes(typeof WebSocket !== 'undefined')}`,
    `fetch streams ${yes(typeof TextDecoderStream !== 'undefined')}`,
    `secure context ${yes(window.isSecureContext)}`,
  ].join(', ');
  const mark = { ok: 'OK  ', warn: 'WARN', fail: 'FAIL', running: '…   ' };
  const lines = [
    t('diag.reportTitle'),
    `${t('diag.reportTime')}: ${new Date().toISOString()}`,
    `${t('diag.reportPage')}: ${location.origin}`,
    `${t('diag.reportBrowser')}: ${navigator.userAgent}`,
    `${t('diag.reportFeatures')}: ${features}`,
    `${t('diag.reportHosts')}: ${hosts.map(hostLabel).join(', ')}`,
  ];
  if (configNote) lines.push(configNote);
  results.forEach((entry, i) => {
    lines.push('', `[${i + 1}] ${hostLabel(entry.host)}`);
    for (const [name] of CHECKS) {
      const check = entry.checks[name];
      lines.push(`  ${mark[check?.result ?? 'running']} ${t('diag.check.' + name)}: ${check?.text ?? '…'}`);
    }
  });
  return lines.join('\n');
}

function renderReport() {
  $('#report').textContent = reportText();
}

async function copyReport() {
  const text = reportText();
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch {
    // navigator.clipboard needs https; select the text so Ctrl+C / ⌘C works.
    const range = document.createRange();
    range.selectNodeContents($('#report'));
    const selection = getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
  }
  announce(ok ? t('diag.copied') : t('diag.copyManual'));
  $('#diag-status').textContent = ok ? t('diag.copied') : t('diag.copyManual');
}

// ---- start -------------------------------------------------------------------------------

await initPage({ auth: false });
$('#run').addEventListener('click', run);
$('#copy').addEventListener('click', copyReport);
document.addEventListener('languagechange', () => {
  renderResults();
  renderReport();
});
run();
