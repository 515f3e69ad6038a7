// The lesson's folder, in the editor (the "Folder" panel): filed where it is made, without a
// trip back to My lessons. Part of editor.js.

import { api } from './api.js';
import { $, h } from './ui.js';

/**
 * `render(folder)` shows a lesson's folder and offers the teacher's folders to pick from;
 * `onChange(folder)` follows every change the teacher makes ('' takes the lesson out).
 */
export function createFolderControl({ onChange }) {
  const input = $('#lesson-folder');
  input.addEventListener('input', () => onChange(input.value.trim()));
  return {
    async render(folder) {
      input.value = folder ?? '';
      try {
        const { body } = await api.get('/api/lessons/folders');
        $('#lesson-folders').replaceChildren(...body.items.map((f) => h('option', { value: f.name })));
      } catch {
        // Without the list a folder can still be typed; the save says what went wrong.
      }
    },
  };
}
