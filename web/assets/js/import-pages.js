// "Page 3 of 40" while the server draws a PDF's pages, shown the same way by My lessons'
// import and the editor's: a progressbar (its value text read out by screen readers) with
// the words beside it for everyone else.

import { t } from './ui.js';

/** Shows page `page` of `pages` in `box` (holding a <progress> and a text span). */
export function showPage(box, page, pages) {
  const bar = box.querySelector('progress');
  const text = t('import.page', { page, pages });
  bar.max = pages;
  bar.value = page;
  bar.setAttribute('aria-valuenow', String(page));
  bar.setAttribute('aria-valuemax', String(pages));
  bar.setAttribute('aria-valuetext', text);
  box.querySelector('span').textContent = text;
  box.hidden = false;
}

/** Hides the pages' progress once the import has ended. */
export function hidePages(box) {
  box.hidden = true;
}
