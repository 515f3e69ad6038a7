// A slide in miniature, for the lists of slides of the console and the editor. Plain DOM:
// it fetches a picture's preview or a video's first frame and draws nothing else.

import { loadMedia } from './api.js';
import { applyTheme, formatClock, layoutOf } from './slides.js';
import { h } from './ui.js';

/**
 * Every slide small, so the teacher finds it at a glance: a picture's preview (made by the
 * server, a few KiB), a video's first frame, and for the others a miniature of the board:
 * the title, and the question mark or the clock, placed as the slide's layout places it and
 * in the colours of the lesson's `theme`.
 */
export function slideThumbnail(slide, theme = null) {
  if (!slide) return null;
  const media = slide.media ? '/api/media/' + encodeURIComponent(slide.media) : null;
  if (media && ['image', 'video'].includes(slide.kind)) {
    const thumb =
      slide.kind === 'image' ? h('img', { class: 'slide-thumb', alt: '' }) : h('video', { class: 'slide-thumb', muted: true, preload: 'metadata' });
    loadMedia(thumb, slide.kind === 'image' ? media + '/preview' : media);
    return thumb;
  }
  const mark = slide.kind === 'question' ? '?' : slide.kind === 'timer' ? formatClock((slide.seconds ?? 0) * 1000) : '';
  const layout = layoutOf(slide);
  const thumb = h(
    'span',
    { class: 'slide-thumb slide-thumb-text', dataset: layout ? { layout } : {}, attrs: { 'aria-hidden': 'true' } },
    h('span', { class: 'thumb-title', text: slide.title?.trim() ?? '' }),
    mark ? h('span', { class: 'thumb-mark', text: mark }) : null,
  );
  applyTheme(thumb, theme);
  return thumb;
}
