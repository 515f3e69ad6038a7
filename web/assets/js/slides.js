// Drawing a board state, for every page that shows one (the board, the console's preview,
// the editor's preview): the slide of each kind, timers, video that follows the teacher, text
// that shrinks to fit, in the slide's layout and its lesson's theme. Plain DOM; it knows
// nothing of the live connection.

import { loadMedia } from './api.js';
import { tr } from './i18n.js';

/**
 * Where a timer stands at server time `now`: `ready` (never started, or reset), `running`,
 * `paused` part-way, or `done`.
 */
export function timerPhase(timer, now) {
  if (timerRemaining(timer, now) <= 0) return 'done';
  if (timer?.running) return 'running';
  return (timer?.remaining_ms ?? 0) >= (timer?.duration_ms ?? 0) ? 'ready' : 'paused';
}

/**
 * The timers of other slides still running (`state.timers`), as "Discuss 04:12" lines for
 * the small countdown shown while another slide is up; empty when there are none.
 */
export function timersElsewhere(state, now) {
  return (state?.timers ?? [])
    .filter((kept) => kept.timer?.running && timerRemaining(kept.timer, now) > 0)
    .map((kept) => `${kept.title || tr('kinds.timer', 'Timer')} ${formatClock(timerRemaining(kept.timer, now))}`);
}

/** Milliseconds left on a timer at server time `now`. */
export function timerRemaining(timer, now) {
  if (!timer) return 0;
  if (timer.running && timer.ends_at != null) return Math.max(0, timer.ends_at - now);
  return Math.max(0, timer.remaining_ms ?? timer.duration_ms ?? 0);
}

/** Where a video is at server time `now`, in milliseconds. */
export function videoPosition(video, now) {
  if (!video) return 0;
  const base = video.position_ms ?? 0;
  return video.playing && video.since != null ? base + Math.max(0, now - video.since) : base;
}

/** mm:ss (or h:mm:ss), rounding up so "00:00" appears only when the time is really up. */
export function formatClock(ms) {
  const total = Math.ceil(Math.max(0, ms) / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n) => String(n).padStart(2, '0');
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
}

function el(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (content != null) node.textContent = content;
  return node;
}

const FIT_STEPS = 9; // board.css has a rule per step, each a bit smaller

// Each theme's slide background (board.css) and the contrast its accent keeps against it:
// WCAG AA's 4.5:1 for text, 7:1 in the high-contrast theme.
const THEMES = {
  light: { background: [0xfb, 0xfb, 0xf8], ratio: 4.5 },
  dark: { background: [0x15, 0x19, 0x1f], ratio: 4.5 },
  contrast: { background: [0, 0, 0], ratio: 7 },
};

function luminance(rgb) {
  const [r, g, b] = rgb.map((v) => {
    const c = v / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/**
 * The accent `hex` (#rrggbb) as theme `name` shows it: itself where it keeps the theme's
 * contrast against the background, else mixed towards black (light theme) or white (the
 * others) a twentieth at a time until it does. A teacher's colour is never refused for this.
 */
export function readableAccent(hex, name) {
  const theme = THEMES[name] ?? THEMES.light;
  const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const toward = luminance(theme.background) > 0.5 ? 0 : 255;
  for (let step = 0; step <= 20; step++) {
    const mixed = rgb.map((v) => Math.round(v + ((toward - v) * step) / 20));
    // A little over the ratio, so that rounding in a contrast checker never tips it.
    if (contrast(mixed, theme.background) >= theme.ratio + 0.05) return '#' + mixed.map((v) => v.toString(16).padStart(2, '0')).join('');
  }
  return toward ? '#ffffff' : '#000000';
}

/**
 * Colours `element` (a slide frame, a miniature) in `theme` ({name, accent}, or none for the
 * default look): its data-theme picks board.css's colours, the accent a custom property.
 */
export function applyTheme(element, theme) {
  const name = THEMES[theme?.name] ? theme.name : 'light';
  element.dataset.theme = name;
  if (theme?.accent) element.style.setProperty('--slide-accent', readableAccent(theme.accent, name));
  else element.style.removeProperty('--slide-accent');
}

/** A slide's layout: its own, or its kind's usual look (a slide saved before layouts). */
export function layoutOf(slide) {
  return slide?.layout ?? { text: 'text', image: 'picture' }[slide?.kind] ?? null;
}

/**
 * Draw the slide of `state` into `frame` (an element with class "slide-frame"). Timers and
 * videos keep following the clock via the returned updater: call tick(serverNow()) often.
 * Only `slide.html` (sanitised by the server) is inserted as HTML; everything else is text.
 * options: {preview} — a small copy in the console: muted video, no autoplay.
 */
export function renderSlide(frame, state, { preview = false } = {}) {
  const slide = state?.slide;
  // The same video on the next state (play, pause) keeps its element, so it does not reload.
  const oldVideo = frame.querySelector('video.slide-media');
  frame.replaceChildren();
  frame.dataset.kind = slide?.kind ?? 'none';
  applyTheme(frame, slide?.theme);
  frame.classList.toggle('is-blanked', !!state?.blanked);
  if (!slide) return { tick() {} };

  const layout = layoutOf(slide);
  const root = el('div', 'slide slide-' + slide.kind + (layout ? ' layout-' + layout : ''));
  root.dataset.fit = '0';
  if (layout) root.dataset.layout = layout;
  frame.append(root);
  const title = slide.title ? el('h2', 'slide-heading', slide.title) : null;
  const body = () => {
    const b = el('div', 'slide-body');
    b.innerHTML = slide.html ?? ''; // sanitised server-side (protocol.md, "Board state")
    return b;
  };
  let tick = () => {};

  switch (slide.kind) {
    case 'question': {
      root.append(el('p', 'slide-label', tr('kinds.question', 'Question')));
      if (title) root.append(title);
      root.append(body());
      if (state.revealed && slide.answer != null) {
        const answer = el('div', 'slide-answer');
        answer.append(el('p', 'slide-answer-label', tr('live.answer', 'Answer')), el('p', 'slide-answer-text', slide.answer));
        root.append(answer);
      }
      break;
    }
    case 'timer': {
      if (title) root.append(title);
      const clock = el('p', 'slide-clock');
      clock.setAttribute('role', 'timer');
      const note = el('p', 'slide-clock-note');
      root.append(clock, note);
      if (slide.html) root.append(body()); // the instructions for the time on the clock
      let last = null;
      tick = (now) => {
        const left = timerRemaining(state.timer, now);
        const shown = formatClock(left);
        const phase = timerPhase(state.timer, now);
        if (shown === last && root.dataset.phase === phase) return;
        last = shown;
        clock.textContent = shown;
        root.dataset.phase = phase;
        note.textContent = {
          done: tr('live.timeUp', 'Time is up'),
          paused: tr('live.timerPaused', 'Paused'),
          ready: tr('live.timerReady', 'Ready'),
        }[phase] ?? '';
      };
      break;
    }
    case 'image':
    case 'video': {
      const media = slide.media ? mediaElement(slide, preview, oldVideo) : placeholder(slide);
      root.append(media);
      if (layout === 'picture-text') {
        // The title and text beside the picture, as on a text slide.
        const beside = el('div', 'slide-beside');
        if (title) beside.append(title);
        beside.append(body());
        root.append(beside);
      } else if (title && layout !== 'picture-full') root.append(el('p', 'slide-caption', slide.title));
      if (slide.kind === 'video' && media.tagName === 'VIDEO') tick = videoFollower(media, state);
      break;
    }
    default: {
      if (title) root.append(title);
      root.append(body());
    }
  }
  fitText(root);
  return { tick };
}

function mediaElement(slide, preview, oldVideo) {
  const path = '/api/media/' + encodeURIComponent(slide.media);
  if (slide.kind === 'video' && oldVideo?.dataset.media === slide.media) return oldVideo;
  if (slide.kind === 'image') {
    const img = el('img', 'slide-media');
    img.alt = slide.alt || slide.title || ''; // a slide without alt text was described so
    loadMedia(img, path, () => img.replaceWith(placeholder(slide)));
    return img;
  }
  const video = el('video', 'slide-media');
  video.dataset.media = slide.media;
  video.preload = 'auto';
  video.playsInline = true;
  video.muted = preview;
  loadMedia(video, path, () => video.replaceWith(placeholder(slide)));
  return video;
}

function placeholder(slide) {
  const box = el('div', 'slide-placeholder');
  box.append(icon(slide.kind), el('span', 'slide-placeholder-text', tr('kinds.' + slide.kind, slide.kind)));
  return box;
}

/** A picture or play icon as inline SVG: board browsers often lack emoji fonts. */
function icon(kind) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 48 48');
  svg.setAttribute('class', 'slide-placeholder-icon');
  svg.setAttribute('aria-hidden', 'true');
  const shapes =
    kind === 'video'
      ? [['rect', { x: 4, y: 8, width: 40, height: 32, rx: 4 }], ['path', { d: 'M20 17v14l12-7z', class: 'fill' }]]
      : [
          ['rect', { x: 4, y: 8, width: 40, height: 32, rx: 4 }],
          ['circle', { cx: 16, cy: 19, r: 4 }],
          ['path', { d: 'M6 36l12-12 8 8 6-6 10 10' }],
        ];
  for (const [tag, attrs] of shapes) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    svg.append(node);
  }
  return svg;
}

/** Keeps a <video> where the state says it should be (seeks only when clearly off). */
function videoFollower(video, state) {
  return (now) => {
    const want = videoPosition(state.video, now) / 1000;
    if (!Number.isFinite(video.duration) && video.readyState < 1) return;
    // A playing video may drift a little behind the clock; a paused one stands where it was put.
    const slack = state.video?.playing ? 1 : 0.25;
    if (Math.abs(video.currentTime - want) > slack) {
      try {
        video.currentTime = want;
      } catch {
        // not seekable yet
      }
    }
    const since = String(state.video?.since);
    if (state.video?.playing && video.dataset.mutedBy === 'browser' && video.dataset.mutedSince !== since) {
      // Played again (the console's "Try with sound"): ask the browser for sound once more.
      video.dataset.mutedSince = since;
      video.muted = false;
      video.pause();
    }
    if (state.video?.playing && video.paused && !video.ended) {
      video.play().then(
        () => {
          if (video.muted || video.dataset.mutedBy !== 'browser') return;
          delete video.dataset.mutedBy;
          video.dispatchEvent(new CustomEvent('classcast:sound', { bubbles: true }));
        },
        () => {
          // Autoplay with sound needs a user gesture; muted playback beats a frozen picture,
          // and the board tells the teacher's console, which offers to try again.
          video.muted = true;
          video.dataset.mutedBy = 'browser';
          video.dataset.mutedSince = since;
          video.play().catch(() => {});
          video.dispatchEvent(new CustomEvent('classcast:muted', { bubbles: true }));
        },
      );
    } else if (!state.video?.playing && !video.paused) {
      video.pause();
    }
  };
}

/** Shrinks text a step at a time until the slide fits its frame: no scrollbars, ever. */
export function fitText(root) {
  let step = 0;
  root.dataset.fit = '0';
  while (step < FIT_STEPS && (root.scrollHeight > root.clientHeight + 1 || root.scrollWidth > root.clientWidth + 1)) {
    step += 1;
    root.dataset.fit = String(step);
  }
}
