// "My lessons": list, sort, load more, create and delete.

import { api, importLesson } from './api.js';
import { formatDateTime } from './i18n.js';
import { $, announce, confirmDialog, errorText, h, initPage, setBusy, t } from './ui.js';

const ORDER_KEY = 'classcast.lessons.order';
const PAGE_SIZE = 20;

const list = $('#lesson-list');
const status = $('#list-status');
const loadMoreButton = $('#load-more');
const sortSelect = $('#sort');
const pageError = $('#page-error');

let order = localStorage.getItem(ORDER_KEY) === 'title' ? 'title' : 'updated';
let items = [];
let cursor = null;
let generation = 0; // ignores answers to requests made before the sort order changed

await initPage();
sortSelect.value = order;

function showPageError(message) {
  pageError.textContent = message ?? '';
  pageError.hidden = !message;
}

async function load({ reset = false } = {}) {
  const gen = reset ? ++generation : generation;
  if (reset) {
    items = [];
    cursor = null;
    list.replaceChildren();
    loadMoreButton.hidden = true;
    status.hidden = false;
    status.textContent = t('lessons.loading');
    $('#empty-state').hidden = true;
  }
  setBusy(loadMoreButton, true);
  const params = new URLSearchParams({ limit: PAGE_SIZE, order });
  if (cursor) params.set('cursor', cursor);
  try {
    const { body } = await api.get('/api/lessons?' + params);
    if (gen !== generation) return;
    items.push(...body.items);
    cursor = body.next_cursor ?? null;
    const firstNew = render(body.items.length);
    status.hidden = true;
    showPageError(null);
    if (!reset && firstNew) firstNew.focus(); // keyboard users continue where the new items start
    if (!reset) announce(t('lessons.loadedMore', { count: body.items.length }));
  } catch (err) {
    if (gen !== generation) return;
    status.hidden = true;
    showPageError(t('lessons.loadFailed', { reason: errorText(err) }));
  } finally {
    setBusy(loadMoreButton, false);
  }
}

/** Redraw the list; returns the link of the first of the last `newCount` items. */
function render(newCount = 0) {
  list.replaceChildren(...items.map(lessonItem));
  const empty = items.length === 0;
  $('#empty-state').hidden = !empty;
  $('#list-toolbar').hidden = empty;
  loadMoreButton.hidden = !cursor;
  const first = list.children[items.length - newCount];
  return newCount && first ? $('a', first) : null;
}

function lessonItem(lesson) {
  const title = lesson.title || t('lessons.untitled');
  const remove = h('button', {
    type: 'button',
    class: 'button button-quiet button-danger-text',
    text: t('common.delete'),
    attrs: { 'aria-label': t('lessons.deleteLabel', { title }) },
    onclick: () => deleteLesson(lesson, title),
  });
  return h(
    'li',
    { class: 'lesson-item card' },
    h(
      'div',
      { class: 'lesson-main' },
      h('h2', { class: 'lesson-title' }, h('a', { class: 'lesson-link', href: '/lessons/' + encodeURIComponent(lesson.id), text: title })),
      h(
        'p',
        { class: 'lesson-meta' },
        h('span', { text: t('lessons.slideCount', { count: lesson.slide_count ?? 0 }) }),
        h('span', { class: 'meta-sep', attrs: { 'aria-hidden': 'true' }, text: '·' }),
        h('span', { text: t('lessons.updated', { date: formatDateTime(lesson.updated_at) }) }),
      ),
    ),
    h('div', { class: 'lesson-actions' }, remove),
  );
}

async function deleteLesson(lesson, title) {
  const ok = await confirmDialog({
    title: t('lessons.deleteTitle', { title }),
    message: t('lessons.deleteMessage'),
    confirm: t('lessons.deleteConfirm'),
    danger: true,
  });
  if (!ok) return;
  try {
    await api.del('/api/lessons/' + encodeURIComponent(lesson.id));
  } catch (err) {
    // Already gone is what the teacher wanted anyway.
    if (err.status !== 404) return showPageError(t('lessons.deleteFailed', { reason: errorText(err) }));
  }
  const index = items.indexOf(lesson);
  items.splice(index, 1);
  render();
  announce(t('lessons.deleted', { title }));
  // Move focus somewhere sensible instead of losing it with the removed button.
  const neighbour = list.children[Math.min(index, items.length - 1)];
  (neighbour ? $('a', neighbour) : $('#lessons-heading')).focus();
}

async function createLesson(event) {
  const button = event.currentTarget;
  setBusy(button, true);
  try {
    const { body } = await api.post('/api/lessons', { title: t('lessons.untitled'), slides: [] });
    location.assign('/lessons/' + encodeURIComponent(body.id));
  } catch (err) {
    showPageError(t('lessons.createFailed', { reason: errorText(err) }));
    setBusy(button, false);
  }
}

// A lesson file becomes a new lesson, opened at once in the editor.
$('#import-file').addEventListener('change', async (event) => {
  const input = event.currentTarget;
  const file = input.files?.[0];
  input.value = ''; // the same file may be chosen again after a refusal
  if (!file) return;
  const importStatus = $('#import-status');
  showPageError(null);
  const progress = (sent, total) => {
    const percent = total ? Math.round((sent / total) * 100) : 0;
    importStatus.textContent = t('lessons.importing', { name: file.name, percent });
  };
  progress(0, file.size);
  try {
    const lesson = await importLesson(file, { onProgress: progress });
    importStatus.textContent = t('lessons.imported', { title: lesson.title });
    location.assign('/lessons/' + encodeURIComponent(lesson.id));
  } catch (err) {
    importStatus.textContent = '';
    // A lesson that breaks a rule says which slide and field: more use than "not valid".
    const [field, message] = Object.entries(err.fields ?? {})[0] ?? [];
    const reason = field ? `${field}: ${message}` : errorText(err);
    showPageError(t('lessons.importFailed', { reason }));
  }
});
$('#import').addEventListener('click', () => $('#import-file').click());
$('#new-lesson').addEventListener('click', createLesson);
$('#empty-new-lesson').addEventListener('click', createLesson);
loadMoreButton.addEventListener('click', () => load());
sortSelect.addEventListener('change', () => {
  order = sortSelect.value;
  localStorage.setItem(ORDER_KEY, order);
  load({ reset: true });
});
// Dates, counts and labels are built here, so redraw them in the new language.
document.addEventListener('languagechange', () => status.hidden && render()); // not while loading

load({ reset: true });
