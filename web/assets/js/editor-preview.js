// The editor's preview of the selected slide as the board will show it: rendered by the
// server as for the board, drawn by the board's own code, with a warning when its text must
// shrink past legibility. Part of editor.js, which hands it the selected slide.

import { api } from './api.js';
import { renderSlide } from './slides.js';
import { $ } from './ui.js';

const PREVIEW_AFTER_MS = 300; // typing pauses this long before the preview follows
const SMALL_TEXT_FIT = 5; // board.css: from this step on, text is at most 56% of its size

/**
 * `selected()`: the slide in the form, or null; `theme()`: the lesson's theme. Returns
 * `schedule()`, called on every edit.
 */
export function createPreview({ selected, theme }) {
  let previewTimer = null;
  let previewAsked = 0;

  function schedule() {
    clearTimeout(previewTimer);
    const slide = selected();
    const frame = $('#slide-preview');
    if (slide && frame.dataset.slide !== String(slide.key)) {
      // Another slide was chosen: its preview at once, and never the last slide's meanwhile.
      frame.replaceChildren();
      frame.dataset.slide = slide.key;
      renderPreview();
      return;
    }
    previewTimer = setTimeout(renderPreview, PREVIEW_AFTER_MS);
  }

  async function renderPreview() {
    const slide = selected();
    if (!slide) return;
    const asked = ++previewAsked;
    // A slide still without its file, answer or seconds is previewed without them.
    const payload = { kind: slide.kind, title: slide.title, body: slide.body };
    if (slide.media) payload.media = slide.media; // the server drops it for other kinds
    if (slide.kind === 'question') payload.answer = slide.answer;
    if (slide.kind === 'timer') payload.seconds = slide.seconds;
    if (slide.layout) payload.layout = slide.layout;
    if (slide.alt) payload.alt = slide.alt;
    let view;
    try {
      ({ body: view } = await api.post('/api/slides/preview', payload));
    } catch {
      return; // not valid (too long, say): the form says why when saving
    }
    if (asked !== previewAsked) return; // a newer edit is being previewed
    const frame = $('#slide-preview');
    const ms = (view.seconds ?? 0) * 1000;
    const state = {
      slide: { ...view, theme: theme() }, // the board has it with every slide
      revealed: true,
      timer: { duration_ms: ms, running: false, ends_at: null, remaining_ms: ms },
      video: { playing: false, position_ms: 0, since: null },
    };
    renderSlide(frame, state, { preview: true }).tick(Date.now());
    const fit = Number(frame.firstElementChild?.dataset.fit ?? 0);
    $('#preview-small').hidden = fit < SMALL_TEXT_FIT;
  }

  return { schedule };
}
