// Teacher console (/teach): pair boards, start a lesson, steer it.
//
// Everything on screen follows the `state` messages from the server, never what this
// device assumes it did: several devices (a laptop and a phone, two colleagues) may steer
// the same board, and a command only counts once the server has acked it.

import { api, clearSession, getSession, loadMedia, loginUrl } from './api.js';
import { $, announce, confirmDialog, errorText, h, initPage, t } from './ui.js';
import { compareVersions, createLive } from './live.js';
import { createBoards } from './teach-boards.js';
import { createMediaControls } from './teach-media.js';
import { slideThumbnail } from './thumbs.js';
import { fitText, formatClock, renderSlide } from './slides.js';

const VIEW_KEY = 'classcast.teach.board'; // the board whose controls are open
const SHOW_NAME_KEY = 'classcast.teach.showName'; // the teacher's choice, kept for the next lesson

// Everything the console knows, in one object; the page is drawn from it (renderAll and the
// render functions below), and only event handlers change it.
const ui = {
  boards: new Map(), // id -> Board from the API, kept current by `board` messages
  lessons: [], // the teacher's lessons (summaries)
  fullLessons: new Map(), // lesson id -> full lesson | 'missing' | 'loading'
  refetched: new Set(), // "lesson:slide" pairs a lesson was fetched again for
  stateSeenAt: new Map(), // board id -> when its newest state arrived
  viewBoard: localStorage.getItem(VIEW_KEY), // controls open for this board…
  showSetup: false, // …unless the teacher went back to the board list
  log: [], // recent commands: {id, op, board, status, error}
  preview: { tick() {} }, // the slide drawn in the console
  boardsLoaded: false,
  typed: '', // slide number keys typed so far
  heading: null, // {board, id, slide, presses}: the unconfirmed navigation of the board in view
};
const BEHIND_AFTER_MS = 2000; // a board that has not shown a state after this is "behind"
const LOG_SIZE = 4;

// ---- data --------------------------------------------------------------------------------


const live = createLive({ role: 'teacher', token: () => getSession()?.token ?? '' });
const boards = createBoards({
  ui,
  live,
  command,
  openControls,
  syncText,
  changed: () => {
    boards.renderStartForm();
    renderAll();
  },
  pageError: showPageError,
  keepsNameOff: () => localStorage.getItem(SHOW_NAME_KEY) === 'no',
});
const media = createMediaControls({ live, ui, command, currentState });

// ---- loading -----------------------------------------------------------------------------

async function loadBoards() {
  try {
    const { body } = await api.get('/api/boards');
    const seen = new Set();
    for (const b of body.items ?? []) {
      seen.add(b.id);
      // A `board` message may already have told us of a newer rendered version: keep it.
      const known = ui.boards.get(b.id)?.rendered_version ?? '0';
      const rendered = String(b.rendered_version ?? 0);
      ui.boards.set(b.id, { ...b, rendered_version: compareVersions(rendered, known) >= 0 ? rendered : known });
      live.watch(b.id);
    }
    for (const id of [...ui.boards.keys()]) {
      if (!seen.has(id)) {
        ui.boards.delete(id);
        live.unwatch(id);
      }
    }
    ui.boardsLoaded = true;
    showPageError(null);
  } catch (err) {
    showPageError(t('teach.boardsFailed', { reason: errorText(err) }));
  }
  boards.renderStartForm();
  renderAll();
}

async function loadLessons() {
  try {
    const { body } = await api.get('/api/lessons?order=updated&limit=100');
    ui.lessons = body.items ?? [];
  } catch (err) {
    showPageError(t('teach.lessonsFailed', { reason: errorText(err) }));
  }
  boards.renderStartForm();
}

/** The full lesson (slide titles, notes) of a presented lesson; other teachers' stay 'missing'. */
function fullLesson(state) {
  const id = state?.lesson?.id;
  if (!id) return null;
  const known = ui.fullLessons.get(id);
  // Slides that do not match suggest the lesson was edited: fetch it again, once per slide
  // (if the board shows an older version of the lesson, it would never match).
  const mismatch = `${id}:${state.slide?.id}`;
  const stale =
    known && typeof known === 'object' && state.slide && known.slides[state.slide_index]?.id !== state.slide.id && !ui.refetched.has(mismatch);
  if (stale) ui.refetched.add(mismatch);
  if (!known || stale) {
    ui.fullLessons.set(id, stale ? known : 'loading');
    api
      .get('/api/lessons/' + encodeURIComponent(id), { redirectOn401: true })
      .then(({ body }) => ui.fullLessons.set(id, body))
      .catch(() => ui.fullLessons.set(id, stale ? known : 'missing'))
      .finally(() => renderPresentView());
  }
  const value = ui.fullLessons.get(id);
  return typeof value === 'object' ? value : null;
}

// ---- commands ----------------------------------------------------------------------------

const OPS_WITH_LABEL = ['present', 'next', 'prev', 'blank', 'unblank', 'reveal', 'hide', 'timer_start', 'timer_pause', 'timer_reset', 'video_play', 'video_pause', 'end'];

/** Send a command and show it as pending until the server confirms it. */
/** `replaces`: the id of a waiting command this one supersedes (see `navigate`). */
function command(board, op, args = {}, replaces = null) {
  const promise = live.send(board, op, args, replaces);
  if (replaces) ui.log = ui.log.filter((entry) => entry.id !== replaces);
  ui.log.push({ id: promise.id, op: labelOp(op, args), board, status: 'pending' });
  ui.log = ui.log.slice(-LOG_SIZE);
  renderLog();
  promise.catch(() => {}); // shown through the 'failed' event
  return promise;
}

function labelOp(op, args) {
  if (op === 'goto') return t('teach.goingTo', { n: args.slide + 1 });
  if (op === 'blank' && args.on === false) return 'unblank';
  if (op === 'reveal' && args.on === false) return 'hide';
  return op;
}

function updateLog(id, status, error) {
  const entry = ui.log.find((e) => e.id === id);
  if (!entry) return;
  entry.status = status;
  entry.error = error;
  renderLog();
  if (status === 'failed') announce(t('teach.commandFailed', { what: opText(entry.op), reason: errorText(error) }));
}

const opText = (op) => (OPS_WITH_LABEL.includes(op) ? t('teach.op.' + op) : op);

// A toggle pressed twice before the first press is confirmed must flip twice: start from
// the newest pending request of that kind, else from the state.
function pendingToggle(board, op) {
  const list = live.pending.filter((c) => c.board === board && c.op === op);
  return list.length ? list[list.length - 1].args?.on : null;
}

function currentState() {
  return ui.viewBoard ? live.state(ui.viewBoard) : null;
}

const controls = {
  next: () => navigate(1),
  prev: () => navigate(-1),
  blank: () => {
    const on = pendingToggle(ui.viewBoard, 'blank') ?? !!currentState()?.blanked;
    command(ui.viewBoard, 'blank', { on: !on });
  },
  reveal: () => {
    const s = currentState();
    if (s?.slide?.kind !== 'question') return;
    const on = pendingToggle(ui.viewBoard, 'reveal') ?? !!s.revealed;
    command(ui.viewBoard, 'reveal', { on: !on });
  },
  end: async () => {
    const ok = await confirmDialog({
      title: t('teach.endTitle'),
      message: t('teach.endMessage'),
      confirm: t('teach.endConfirm'),
    });
    if (ok) command(ui.viewBoard, 'end');
  },
};

function bindControls() {
  $('#next').addEventListener('click', controls.next);
  $('#prev').addEventListener('click', controls.prev);
  $('#blank').addEventListener('click', controls.blank);
  $('#reveal').addEventListener('click', controls.reveal);
  media.bind();
  $('#jump-form').addEventListener('submit', (event) => {
    event.preventDefault();
    goTo(Number($('#jump-number').value) - 1);
    $('#jump-number').value = '';
  });
  bindSwipe();
  document.addEventListener('visibilitychange', keepAwake);
  $('#end').addEventListener('click', controls.end);
  $('#back').addEventListener('click', () => {
    ui.showSetup = true;
    renderAll();
    $('#teach-heading').focus();
  });
  $('#start-form').addEventListener('submit', startPresenting);
  $('#pair-form').addEventListener('submit', boards.pair);
  $('#pair-code').addEventListener('input', (e) => {
    // Accept "483 920" or "483920"; keep only digits, grouped like on the board.
    const digits = e.target.value.replace(/\D/g, '').slice(0, 6);
    const grouped = digits.length > 3 ? digits.slice(0, 3) + ' ' + digits.slice(3) : digits;
    if (grouped !== e.target.value) e.target.value = grouped;
  });
  document.addEventListener('keydown', onKey);
  // After a mouse click or tap on a control, Space and the arrows should steer the lesson
  // again, as in any presentation program, instead of pressing that button once more.
  // Keyboard activation (detail 0) keeps the focus where it is.
  $('.control-bar').addEventListener('click', (event) => {
    const button = event.target.closest('button');
    if (button && event.detail > 0) button.blur();
  });
}

/** Laptop and presentation-clicker shortcuts, only while presenting. */
function onKey(event) {
  if ($('#present-view').hidden || document.querySelector('dialog[open]')) return;
  if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
  const target = event.target;
  if (target.closest('input, textarea, select, [contenteditable="true"]')) return;
  const onButton = target.closest('button, a, summary');
  const key = event.key;
  let action = null;
  if (key === 'ArrowRight' || key === 'PageDown') action = controls.next;
  else if (key === 'ArrowLeft' || key === 'PageUp') action = controls.prev;
  else if (key === ' ' && !onButton) action = controls.next; // on a button, Space presses that button
  else if (key === 'b' || key === 'B' || key === '.') action = controls.blank; // clickers send "." or "b"
  else if (key === 'r' || key === 'R') action = controls.reveal;
  else if (key === 't' || key === 'T') action = controls.timer;
  else if (key === 'Home') action = () => goTo(0);
  else if (key === 'End') action = () => goTo((currentState()?.lesson?.slide_count ?? 1) - 1);
  else if (/^[0-9]$/.test(key)) action = () => typeNumber(key);
  else if (key === 'Enter' && ui.typed && !onButton) action = () => goTo(Number(ui.typed) - 1);
  if (!action) return;
  event.preventDefault();
  action();
}

// Slide numbers typed on a laptop (or a clicker's keypad), then Enter: as in presentation
// programs. Forgotten after a few seconds.
let typedTimer = null;
function typeNumber(digit) {
  ui.typed = (ui.typed + digit).slice(-3);
  clearTimeout(typedTimer);
  typedTimer = setTimeout(() => (ui.typed = ''), 3000);
}

function goTo(slide) {
  ui.typed = '';
  const state = currentState();
  const total = state?.lesson?.slide_count ?? 0;
  if (!state?.lesson || !Number.isInteger(slide) || slide < 0 || slide >= total) return;
  if (slide !== (state.slide_index ?? 0)) command(ui.viewBoard, 'goto', { slide });
}

/** Swipe the preview left for the next slide, right for the previous one (phones, tablets). */
function bindSwipe() {
  let start = null;
  const slide = $('#preview');
  slide.addEventListener('pointerdown', (e) => (start = { x: e.clientX, y: e.clientY }));
  slide.addEventListener('pointercancel', () => (start = null));
  slide.addEventListener('pointerup', (e) => {
    if (!start) return;
    const dx = e.clientX - start.x;
    const dy = e.clientY - start.y;
    start = null;
    if (Math.abs(dx) > 50 && Math.abs(dx) > 2 * Math.abs(dy)) navigate(dx < 0 ? 1 : -1);
  });
}

// The screen of the phone stays on while presenting (where the browser allows it).
let wakeLock = null;
async function keepAwake() {
  const want = document.body.classList.contains('is-presenting') && document.visibilityState === 'visible';
  if (want && !wakeLock && navigator.wakeLock) {
    try {
      wakeLock = await navigator.wakeLock.request('screen');
      wakeLock.addEventListener('release', () => (wakeLock = null));
    } catch {
      // refused (battery saver, or no user gesture yet): the phone may dim, nothing breaks
    }
  } else if (!want && wakeLock) {
    wakeLock.release().catch(() => {});
  }
}

/** Time since this lesson started on the board in view, kept across reloads of the console. */
function renderElapsed() {
  const state = currentState();
  const el = $('#elapsed');
  if (!state?.lesson || $('#present-view').hidden) {
    el.hidden = true;
    return;
  }
  const key = `classcast.teach.started.${ui.viewBoard}.${state.lesson.id}`;
  let started = Number(sessionStorage.getItem(key));
  if (!started) {
    started = Date.now();
    sessionStorage.setItem(key, String(started));
  }
  el.hidden = false;
  el.textContent = t('teach.elapsed', { time: formatClock(Date.now() - started) });
}

async function startPresenting(event) {
  event.preventDefault();
  const board = $('#start-board').value;
  const lesson = $('#start-lesson').value;
  if (!board || !lesson) return;
  const current = live.state(board);
  if (current?.lesson && current.lesson.id !== lesson) {
    const ok = await confirmDialog({
      title: t('teach.replaceTitle'),
      message: t('teach.replaceMessage', { title: current.lesson.title, name: current.presenter?.name ?? '' }),
      confirm: t('teach.replaceConfirm'),
    });
    if (!ok) return;
  }
  openControls(board);
  const showName = $('#start-show-name').checked;
  localStorage.setItem(SHOW_NAME_KEY, showName ? 'yes' : 'no');
  command(board, 'present', { lesson, show_name: showName });
}

function openControls(board) {
  ui.viewBoard = board;
  localStorage.setItem(VIEW_KEY, board);
  ui.showSetup = false;
  renderAll();
  if (!$('#present-view').hidden) $('#present-title').focus();
}

// ---- drawing -----------------------------------------------------------------------------

function showPageError(message) {
  const el = $('#page-error');
  el.textContent = message ?? '';
  el.hidden = !message;
}

function renderAll() {
  // A device that has not chosen a board yet (e.g. the phone picked up mid-lesson) opens the
  // controls of the one board of this teacher that is presenting.
  if (!ui.viewBoard && !ui.showSetup) {
    const showing = [...ui.boards.keys()].filter((id) => live.state(id)?.lesson);
    if (showing.length === 1) ui.viewBoard = showing[0];
  }
  const presenting = !!(ui.viewBoard && ui.boards.has(ui.viewBoard) && live.state(ui.viewBoard)?.lesson);
  const awaitingStart = ui.viewBoard && live.pending.some((c) => c.board === ui.viewBoard && c.op === 'present');
  const present = !ui.showSetup && (presenting || awaitingStart);
  const leaving = !present && !$('#present-view').hidden;
  const hadFocus = $('#present-view').contains(document.activeElement);
  $('#setup-view').hidden = present;
  $('#present-view').hidden = !present;
  document.body.classList.toggle('is-presenting', present);
  keepAwake();
  renderElapsed();
  boards.renderList();
  if (present) renderPresentView();
  else ui.preview = { tick() {} };
  if (leaving) {
    document.title = t('teach.pageTitle');
    if (hadFocus) $('#teach-heading').focus(); // the control that had focus is gone
    if (!presenting) announce(t('teach.ended'));
  }
}

function renderConnection({ transport, host }) {
  const el = $('#connection');
  el.dataset.transport = transport;
  el.dataset.host = host ?? live.host ?? '';
  // Teachers read whether the board can be steered; how (the transport) is for IT, in the details.
  const key = { websocket: 'live.live', fallback: 'live.live', offline: 'live.offline' }[transport] ?? 'live.connecting';
  el.textContent = t(key);
  const how = { websocket: 'live.websocket', fallback: 'live.fallback' }[transport];
  $('#connection-how').textContent = how ? t(how) + (el.dataset.host ? ' · ' + el.dataset.host : '') : t(key);
  renderSync();
}

// Next and previous go to a slide by number (`goto`), counted from where the teacher is
// heading: a press while the one before is still unconfirmed moves that target on by one
// instead of queueing a second command, and replaces it. So presses made during an outage
// end on the slide the console shows as the target ("Waiting: the board will show slide 7
// (2 presses)"), never further, whatever is resent (docs/protocol.md, "Presses while
// offline").

function navigate(step) {
  const state = currentState();
  // Until the console has the state a `present` or `end` makes (waiting to be confirmed, or
  // confirmed before its state arrived), there is no slide to count from: a relative press
  // is sent, applied after it, as before.
  const starting = live.pending.some((c) => c.board === ui.viewBoard && (c.op === 'present' || c.op === 'end'));
  if (!state?.lesson || starting || (live.behind(ui.viewBoard) && !live.pending.some((c) => c.id === ui.heading?.id))) {
    command(ui.viewBoard, step > 0 ? 'next' : 'prev');
    return;
  }
  const waiting = ui.heading?.board === ui.viewBoard && live.pending.some((c) => c.id === ui.heading.id) ? ui.heading : null;
  const from = waiting ? waiting.slide : (state.slide_index ?? 0);
  const slide = Math.min(Math.max(from + step, 0), (state.lesson.slide_count ?? 1) - 1);
  if (slide === from) return;
  const promise = command(ui.viewBoard, 'goto', { slide }, waiting?.id);
  ui.heading = { board: ui.viewBoard, id: promise.id, slide, presses: (waiting?.presses ?? 0) + 1 };
  renderPending({ pending: live.pending });
}

function renderPending({ pending }) {
  const el = $('#pending-summary');
  el.hidden = pending.length === 0;
  const goingTo = ui.heading && pending.some((c) => c.id === ui.heading.id) ? ui.heading : null;
  el.textContent = goingTo
    ? t('teach.pendingGoto', { n: goingTo.slide + 1, count: goingTo.presses })
    : t('teach.pendingCount', { count: pending.length });
}

function boardName(id) {
  return ui.boards.get(id)?.name ?? t('teach.unknownBoard');
}

/** "Board shows slide 5" / "Board is behind…" / "Board offline" for the board in view. */
function syncText(id) {
  const board = ui.boards.get(id);
  const state = live.state(id);
  if (!board) return { kind: 'unknown', text: '' };
  if (live.transport === 'offline') return { kind: 'unknown', text: t('teach.syncUnknown') };
  if (!board.online) return { kind: 'offline', text: t('teach.syncOffline') };
  if (!state) return { kind: 'unknown', text: '' };
  if (compareVersions(board.rendered_version, state.version) >= 0) {
    return {
      kind: 'ok',
      text: state.lesson ? t('teach.syncShows', { n: (state.slide_index ?? 0) + 1 }) : t('teach.syncIdle'),
    };
  }
  const waited = Date.now() - (ui.stateSeenAt.get(id) ?? 0);
  return waited < BEHIND_AFTER_MS ? { kind: 'updating', text: t('teach.syncUpdating') } : { kind: 'behind', text: t('teach.syncBehind') };
}

function renderSync() {
  const el = $('#sync-status');
  if (!ui.viewBoard) return;
  const { kind, text } = syncText(ui.viewBoard);
  el.dataset.sync = kind;
  el.textContent = text;
  // The same in the status bar, which a phone keeps in view at every scroll position.
  const bar = $('#bar-sync');
  bar.dataset.sync = kind;
  bar.textContent = text;
  bar.hidden = !text;
  const holds = kind === 'ok' ? holdsText(ui.viewBoard) : { kind: 'unknown', text: '' };
  $('#board-holds').dataset.holds = holds.kind;
  $('#board-holds').textContent = holds.text;
}

/**
 * What the board holds of the lesson, as it said with the slide it shows: the pictures and
 * videos of the next slides ("ready") and of every slide ("cached": it goes on without the
 * network).
 */
function holdsText(id) {
  const board = ui.boards.get(id);
  if (!board || !live.state(id)?.lesson) return { kind: 'unknown', text: '' };
  if (board.cached) return { kind: 'cached', text: t('teach.holdsLesson') };
  if (board.ready) return { kind: 'ready', text: t('teach.holdsNext') };
  return { kind: 'loading', text: t('teach.holdsLoading') };
}

function renderPresentView() {
  const state = currentState();
  $('#present-board-name').textContent = boardName(ui.viewBoard);
  renderSync();
  renderLog();
  if (!state?.lesson) {
    // "Present" was sent, the state has not arrived yet.
    $('#present-title').textContent = t('teach.starting');
    $('#preview').replaceChildren();
    ui.preview = { tick() {} };
    for (const id of ['reveal', 'timer-toggle', 'timer-add', 'timer-reset', 'video-toggle', 'video-seek-label', 'video-sound']) $('#' + id).hidden = true;
    return;
  }
  const lesson = fullLesson(state);
  const index = state.slide_index ?? 0;
  const total = state.lesson.slide_count ?? 0;
  const slide = state.slide;
  $('#present-title').textContent = state.lesson.title || t('lessons.untitled');
  // On a shared board it may be a colleague's lesson: say whose.
  const mine = ui.lessons.some((l) => l.id === state.lesson.id);
  const by = $('#present-by');
  if (by) by.textContent = !mine && state.presenter?.name ? t('teach.presentedBy', { name: state.presenter.name }) : '';
  document.title = t('teach.pageTitleWith', { title: state.lesson.title || t('lessons.untitled') });

  const frame = $('#preview');
  ui.preview = renderSlide(frame, state, { preview: true });
  ui.preview.tick(live.serverNow());
  $('#preview-blank').hidden = !state.blanked;
  $('#preview-label').textContent = t('teach.slideOf', { n: index + 1, total });

  // controls
  $('#prev').disabled = index <= 0;
  $('#next').disabled = index >= total - 1;
  $('#blank').textContent = state.blanked ? t('teach.unblank') : t('teach.blank');
  $('#blank').classList.toggle('is-on', !!state.blanked);
  const question = slide?.kind === 'question';
  $('#reveal').hidden = !question;
  $('#reveal').textContent = state.revealed ? t('teach.hideAnswer') : t('teach.reveal');
  const timer = slide?.kind === 'timer' && state.timer;
  $('#timer-toggle').hidden = !timer;
  $('#timer-reset').hidden = !timer;
  $('#timer-add').hidden = !timer;
  const video = slide?.kind === 'video' && state.video;
  $('#video-toggle').hidden = !video;
  $('#video-toggle').textContent = state.video?.playing ? t('teach.videoPause') : t('teach.videoPlay');
  $('#video-seek-label').hidden = !video;
  media.renderVideoSound();
  media.renderTimerButtons();

  // next slide, notes, slide list
  const slides = lesson?.slides ?? null;
  const next = index + 1 < total ? slides?.[index + 1] : null;
  $('#next-thumb').replaceChildren(...(next ? [slideThumbnail(next, lesson?.theme)] : []));
  $('#next-title').textContent =
    index + 1 >= total ? t('teach.lastSlide') : next ? slideLabel(next, index + 1) : t('teach.slideN', { n: index + 2 });
  const notes = slides?.[index]?.notes?.trim();
  const notesEl = $('#notes');
  notesEl.classList.toggle('is-empty', !notes);
  notesEl.textContent = notes
    ? notes
    : ui.fullLessons.get(state.lesson.id) === 'missing'
      ? t('teach.notesUnavailable')
      : ui.fullLessons.get(state.lesson.id) === 'loading'
        ? t('teach.notesLoading')
        : t('teach.noNotes');
  renderJumpList(slides, index, total, lesson?.theme);
}

function slideLabel(slide, index) {
  return slide.title?.trim() || `${t('kinds.' + slide.kind)} · ${t('teach.slideN', { n: index + 1 })}`;
}

function renderJumpList(slides, index, total, theme) {
  const list = $('#jump-list');
  const items = [];
  for (let i = 0; i < total; i++) {
    const s = slides?.[i];
    const button = h(
      'button',
      {
        type: 'button',
        class: 'jump-item',
        onclick: () => command(ui.viewBoard, 'goto', { slide: i }),
        attrs: i === index ? { 'aria-current': 'true' } : {},
      },
      h('span', { class: 'jump-num', text: String(i + 1) }),
      slideThumbnail(s, theme),
      h(
        'span',
        { class: 'jump-text' },
        s ? h('span', { class: 'slide-kind kind-' + s.kind, text: t('kinds.' + s.kind) }) : null,
        h('span', { class: 'jump-title', text: s ? s.title?.trim() || t('editor.untitledSlide') : t('teach.slideN', { n: i + 1 }) }),
      ),
    );
    items.push(h('li', {}, button));
  }
  // Keep focus on the same position when the list is redrawn (e.g. after a goto).
  const focused = list.contains(document.activeElement) ? [...list.querySelectorAll('button')].indexOf(document.activeElement) : -1;
  list.replaceChildren(...items);
  if (focused >= 0) list.querySelectorAll('button')[focused]?.focus();
}

function renderLog() {
  const list = $('#command-log');
  list.replaceChildren(
    ...ui.log
      .filter((e) => e.board === ui.viewBoard)
      .slice()
      .reverse()
      .map((e) =>
        h(
          'li',
          { class: 'command-item', dataset: { status: e.status } },
          h('span', { class: 'command-op', text: opText(e.op) }),
          h('span', {
            class: 'command-status',
            text:
              e.status === 'confirmed'
                ? t('teach.statusConfirmed')
                : e.status === 'failed'
                  ? t('teach.statusFailed', { reason: errorText(e.error) })
                  : t('teach.statusPending'),
          }),
        ),
      ),
  );
}

window.addEventListener('resize', () => {
  const slide = $('#preview').firstElementChild;
  if (slide) fitText(slide);
});

// ---- page start --------------------------------------------------------------------------

async function main() {
  await initPage();
  $('#start-show-name').checked = localStorage.getItem(SHOW_NAME_KEY) !== 'no';
  boards.fillHelp();
  bindControls();
  live.on('status', renderConnection);
  live.on('welcome', () => ui.boardsLoaded && loadBoards()); // catch up on what we missed while away
  live.on('state', ({ board }) => {
    ui.stateSeenAt.set(board, Date.now());
    setTimeout(() => {
      renderSync();
      boards.renderList();
    }, BEHIND_AFTER_MS + 50);
    renderAll();
  });
  live.on('board', (msg) => {
    const b = ui.boards.get(msg.board);
    if (!b) return;
    b.online = !!msg.online;
    if (msg.rendered_version != null) b.rendered_version = String(msg.rendered_version);
    b.ready = !!msg.ready;
    b.cached = !!msg.cached;
    b.muted = !!msg.muted;
    boards.renderList();
    boards.renderStartForm();
    renderSync();
    if (msg.board === ui.viewBoard) media.renderVideoSound();
  });
  live.on('pending', renderPending);
  live.on('ack', (ack) => updateLog(ack.id, 'confirmed'));
  live.on('failed', ({ command, error }) => {
    updateLog(command.id, 'failed', error);
    if (command.op === 'present') {
      showPageError(t('teach.presentFailed', { reason: errorText(error) }));
      renderAll(); // back from "Starting the lesson…"
    }
  });
  live.on('unfollowed', () => loadBoards()); // unpaired (perhaps on another device)
  live.on('error', (msg) => {
    // A followed board that is gone (unpaired elsewhere): the list from the API is the truth.
    if (msg.code === 'not_found') loadBoards();
  });
  live.on('unauthorized', () => {
    clearSession();
    location.assign(loginUrl());
  });
  live.on('outdated', () => showPageError(t('live.outdated')));
  // Commands restored from a reload are still on their way: show them as pending.
  for (const c of live.pending) ui.log.push({ id: c.id, op: c.op, board: c.board, status: 'pending' });
  renderPending({ pending: live.pending });

  await Promise.all([loadBoards(), loadLessons()]);
  boards.prefillScanned();
  live.start();
  setInterval(() => {
    ui.preview.tick(live.serverNow());
    media.renderVideoSeek();
  }, 200);
  setInterval(renderElapsed, 1000);
  setInterval(media.renderTimerButtons, 500);
  document.addEventListener('languagechange', () => {
    boards.fillHelp();
    renderConnection({ transport: live.transport });
    renderPending({ pending: live.pending });
    boards.renderStartForm();
    renderAll();
  });
}

main();
