// How the selected slide looks, in the editor: the layouts its kind allows, and which of the
// form's fields that layout shows. Part of editor.js, which hands it the selected slide.

import { $, h, t } from './ui.js';

/** The layouts of each kind (domain/design.rs), the kind's usual look first. */
const LAYOUTS = {
  text: ['text', 'title', 'two-columns', 'big'],
  image: ['picture', 'picture-text', 'picture-full'],
};

/** The slide's layout when its kind allows it, else '' (the kind's usual look). */
export function allowedLayout(slide) {
  return LAYOUTS[slide.kind]?.includes(slide.layout) ? slide.layout : '';
}

/** Fills the layout select for `slide` and shows the fields its layout uses. */
export function renderLayout(slide) {
  const names = LAYOUTS[slide.kind] ?? [];
  const select = $('#slide-layout');
  select.replaceChildren(...names.map((name) => h('option', { value: name, text: t('layouts.' + name) })));
  select.value = allowedLayout(slide) || names[0] || '';
  const layout = select.value;
  $('#slide-layout-hint').textContent = t('layouts.' + layout + 'Hint');
  // A picture with text beside it has a text, as text, question and timer slides do.
  $('#slide-body').closest('.field').hidden = !(['text', 'question', 'timer'].includes(slide.kind) || layout === 'picture-text');
}
