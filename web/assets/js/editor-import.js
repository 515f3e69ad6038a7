// The editor's "Import slides": a PDF's pages drawn on the server (POST /api/slides/import)
// and inserted as picture slides after the selected slide; the teacher saves as usual.
// Kept apart from editor.js, which hands it one function to insert the slides.

import { importSlides } from './api.js';
import { hidePages, showPage } from './import-pages.js';
import { $, announce, errorText, setBusy, t } from './ui.js';

/** Wires the button; `insert(slides)` puts the slides into the draft and answers false when they do not fit. */
export function initSlideImport({ insert }) {
  const button = $('#import-slides');
  const input = $('#import-slides-file');
  const status = $('#import-slides-status');
  const pages = $('#import-slides-pages');
  button.addEventListener('click', () => input.click());
  input.addEventListener('change', async () => {
    const file = input.files?.[0];
    input.value = ''; // the same file may be chosen again after a refusal
    if (!file) return;
    setBusy(button, true);
    status.textContent = t('editor.importingSlides', { name: file.name });
    try {
      const { slides } = await importSlides(file, { onPage: (page, count) => showPage(pages, page, count) });
      if (!insert(slides)) {
        status.textContent = '';
        return;
      }
      status.textContent = t('editor.importedSlides', { n: slides.length });
      announce(status.textContent);
    } catch (err) {
      status.textContent = t('editor.importSlidesFailed', { reason: errorText(err) });
    } finally {
      hidePages(pages);
      setBusy(button, false);
    }
  });
}
