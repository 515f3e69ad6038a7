// How slides look, in the editor: the layouts the selected slide's kind allows (and which of
// the form's fields that layout shows), and the lesson's theme. Part of editor.js.

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

/**
 * The lesson's theme and accent colour (the "Theme" panel). `render(theme)` shows a lesson's;
 * `onChange(theme)` follows every change the teacher makes.
 */
export function createThemeControls({ onChange }) {
  const name = $('#lesson-theme');
  const accentOn = $('#lesson-accent-on');
  const accent = $('#lesson-accent');
  const read = () => ({ name: name.value, ...(accentOn.checked ? { accent: accent.value } : {}) });
  for (const control of [name, accentOn, accent]) {
    // A colour input reports while its picker is open (input) and once closed (change).
    for (const type of ['input', 'change']) {
      control.addEventListener(type, () => {
        accent.disabled = !accentOn.checked;
        onChange(read());
      });
    }
  }
  return {
    render(theme) {
      name.value = theme?.name ?? 'light';
      accentOn.checked = Boolean(theme?.accent);
      if (theme?.accent) accent.value = theme.accent;
      accent.disabled = !accentOn.checked;
    },
  };
}
