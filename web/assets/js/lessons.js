// "My lessons": list, sort, load more, create and delete; search as you type, folders to
// file lessons in and filter by, and copies of a lesson (the lesson library, issue 24).
// Sharing (the Share dialog, "Shared with me", the school library) is lessons-shared.js.

import { api, apiConfig, DECK_TYPES, importLesson, isDeck, isPdf } from './api.js';
import { formatDateTime } from './i18n.js';
import { hidePages, showPage } from './import-pages.js';
import { initShelves, shareDialog } from './lessons-shared.js';
import { $, announce, confirmDialog, errorText, h, initPage, setBusy, t } from './ui.js';

const ORDER_KEY = 'classcast.lessons.order';
const PAGE_SIZE = 20;
const SEARCH_DELAY_MS = 250; // after the last key: a search per pause, not per keystroke

const list = $('#lesson-list');
const status = $('#list-status');
const loadMoreButton = $('#load-more');
const sortSelect = $('#sort');
const pageError = $('#page-error');
const searchInput = $('#search');
const folderSelect = $('#folder-filter');

let order = localStorage.getItem(ORDER_KEY) === 'title' ? 'title' : 'updated';
let items = [];
let cursor = null;
let generation = 0; // ignores answers to requests made before the sort order, search or folder changed
let folders = []; // the teacher's folders: [{name, lessons}]
let searchTimer = null;

await initPage();
sortSelect.value = order;
offerImports(await apiConfig());

/**
 * PowerPoint and OpenDocument slides are offered where the server converts them; elsewhere a
 * line under the button says how to save them as a PDF.
 */
function offerImports({ officeImport }) {
  const button = $('#import');
  if (officeImport) {
    const input = $('#import-file');
    input.accept = [input.accept, ...Object.keys(DECK_TYPES), ...Object.values(DECK_TYPES)].join(',');
    button.dataset.i18n = 'lessons.importOffice';
    button.textContent = t('lessons.importOffice');
  } else {
    $('#import-hint').hidden = false;
    button.setAttribute('aria-describedby', 'import-hint');
  }
}

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
  const q = searchInput.value.trim();
  if (q) params.set('q', q);
  if (folderSelect.value) params.set('folder', folderSelect.value);
  try {
    const { body } = await api.get('/api/lessons?' + params);
    if (gen !== generation) return;
    items.push(...body.items);
    cursor = body.next_cursor ?? null;
    status.hidden = true;
    const firstNew = render(body.items.length);
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

/** Whether the list shows a search's or a folder's lessons rather than all of them. */
function filtered() {
  return searchInput.value.trim() !== '' || folderSelect.value !== '';
}

/** Redraw the list; returns the link of the first of the last `newCount` items. */
function render(newCount = 0) {
  list.replaceChildren(...items.map(lessonItem));
  const empty = items.length === 0;
  // Without any lesson the page invites to make one; a search that finds none says so.
  $('#empty-state').hidden = !empty || filtered();
  $('#list-toolbar').hidden = empty && !filtered();
  if (empty && filtered()) {
    status.hidden = false;
    status.textContent = t('lessons.noMatch');
  }
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
  const copy = h('button', {
    type: 'button',
    class: 'button button-quiet',
    text: t('lessons.duplicate'),
    attrs: { 'aria-label': t('lessons.duplicateLabel', { title }) },
    onclick: (event) => duplicateLesson(lesson, event.currentTarget),
  });
  const move = h('button', {
    type: 'button',
    class: 'button button-quiet',
    text: t('lessons.move'),
    attrs: { 'aria-label': t('lessons.moveLabel', { title }) },
    onclick: (event) => moveLesson(lesson, title, event.currentTarget),
  });
  const share = h('button', {
    type: 'button',
    class: 'button button-quiet',
    text: t('lessons.share'),
    attrs: { 'aria-label': t('lessons.shareLabel', { title }), 'aria-haspopup': 'dialog' },
    onclick: (event) => shareDialog(lesson, title, event.currentTarget),
  });
  const folder = lesson.folder
    ? [
        h('span', { class: 'meta-sep', attrs: { 'aria-hidden': 'true' }, text: '·' }),
        h('span', { class: 'lesson-folder', text: t('lessons.inFolder', { folder: lesson.folder }) }),
      ]
    : [];
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
        ...folder,
      ),
    ),
    h('div', { class: 'lesson-actions' }, copy, move, share, remove),
  );
}

/** Reloads the list, then puts the focus on lesson `id`'s link (or the heading). */
async function reloadAt(id) {
  await Promise.all([load({ reset: true }), loadFolders()]);
  const at = items.findIndex((l) => l.id === id);
  (at >= 0 ? $('a', list.children[at]) : $('#lessons-heading')).focus();
}

async function duplicateLesson(lesson, button) {
  setBusy(button, true);
  try {
    const { body } = await api.post('/api/lessons/' + encodeURIComponent(lesson.id) + '/duplicate');
    announce(t('lessons.duplicated', { title: body.title }));
    await reloadAt(body.id);
  } catch (err) {
    showPageError(t('lessons.duplicateFailed', { reason: errorText(err) }));
  } finally {
    setBusy(button, false);
  }
}

/** Asks for a folder name, offering the teacher's folders; resolves to it, or null if cancelled. */
function folderDialog(title, current) {
  return new Promise((resolve) => {
    const input = h('input', {
      id: 'move-folder',
      type: 'text',
      maxLength: 60,
      value: current ?? '',
      autocomplete: 'off',
      attrs: { list: 'move-folders', 'aria-describedby': 'move-hint' },
    });
    const known = h('datalist', { id: 'move-folders' }, ...folders.map((f) => h('option', { value: f.name })));
    const dialog = h(
      'dialog',
      { class: 'dialog', attrs: { 'aria-labelledby': 'move-title' } },
      h(
        'form',
        { method: 'dialog', class: 'stack' },
        h('h2', { id: 'move-title', text: t('lessons.moveTitle', { title }) }),
        h('div', { class: 'field' }, h('label', { attrs: { for: 'move-folder' }, text: t('lessons.folderName') }), input, known),
        h('p', { id: 'move-hint', class: 'muted', text: t('lessons.moveHint') }),
        h(
          'div',
          { class: 'dialog-actions' },
          h('button', { value: 'cancel', class: 'button', text: t('common.cancel') }),
          h('button', { value: 'confirm', class: 'button button-primary', text: t('lessons.moveConfirm') }),
        ),
      ),
    );
    // Enter in the field moves (the form's first button, which Enter would press, cancels).
    input.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter') return;
      event.preventDefault();
      dialog.close('confirm');
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(dialog.returnValue === 'confirm' ? input.value.trim() : null);
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
    input.select();
  });
}

// Filing a lesson is a save like any other: the whole lesson as it is, in its new folder,
// based on the version read (a save in between is refused, never overwritten).
async function moveLesson(lesson, title, button) {
  const folder = await folderDialog(title, lesson.folder);
  if (folder === null || folder === (lesson.folder ?? '')) return button.focus();
  setBusy(button, true);
  try {
    const path = '/api/lessons/' + encodeURIComponent(lesson.id);
    const { body: current } = await api.get(path);
    await api.put(path, { title: current.title, slides: current.slides, folder }, { ifMatch: current.version });
    announce(folder ? t('lessons.moved', { title, folder }) : t('lessons.movedOut', { title }));
    await reloadAt(lesson.id);
  } catch (err) {
    const [field, message] = Object.entries(err.fields ?? {})[0] ?? [];
    showPageError(t('lessons.moveFailed', { reason: field ? message : errorText(err) }));
    button.focus();
  } finally {
    setBusy(button, false);
  }
}

/** The folder filter: "All folders" and each folder with its count; keeps the choice while it exists. */
async function loadFolders() {
  try {
    ({ body: { items: folders } } = await api.get('/api/lessons/folders'));
  } catch {
    return; // the filter keeps the folders it had; the list says what went wrong
  }
  const chosen = folderSelect.value;
  const all = folderSelect.options[0];
  folderSelect.replaceChildren(
    all,
    ...folders.map((f) => h('option', { value: f.name, text: t('lessons.folderOption', { folder: f.name, count: f.lessons }) })),
  );
  folderSelect.value = folders.some((f) => f.name === chosen) ? chosen : '';
  if (folderSelect.value !== chosen) load({ reset: true }); // its last lesson moved out
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
  loadFolders();
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

// A lesson file or a PDF becomes a new lesson, opened at once in the editor.
$('#import-file').addEventListener('change', async (event) => {
  const input = event.currentTarget;
  const file = input.files?.[0];
  input.value = ''; // the same file may be chosen again after a refusal
  if (!file) return;
  const importStatus = $('#import-status');
  const button = $('#import');
  const pagesBox = $('#import-pages');
  showPageError(null);
  const progress = (sent, total) => {
    const percent = total ? Math.round((sent / total) * 100) : 0;
    // Once a PDF has arrived the server draws its pages, a second or so for every few; slides
    // are converted to a PDF first.
    const drawing = isPdf(file) ? 'lessons.importingPdf' : isDeck(file) ? 'lessons.importingDeck' : null;
    importStatus.textContent =
      percent >= 100 && drawing
        ? t(drawing, { name: file.name })
        : t('lessons.importing', { name: file.name, percent });
  };
  progress(0, file.size);
  setBusy(button, true);
  try {
    const onPage = (page, pages) => showPage(pagesBox, page, pages);
    const lesson = await importLesson(file, { onProgress: progress, onPage });
    importStatus.textContent = t('lessons.imported', { title: lesson.title });
    location.assign('/lessons/' + encodeURIComponent(lesson.id));
  } catch (err) {
    importStatus.textContent = '';
    hidePages(pagesBox);
    setBusy(button, false);
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
searchInput.addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => load({ reset: true }), SEARCH_DELAY_MS);
});
folderSelect.addEventListener('change', () => load({ reset: true }));
const loadShelves = initShelves({ copied: (copy) => reloadAt(copy.id), showError: showPageError });
// Dates, counts and labels are built here, so redraw them in the new language.
document.addEventListener('languagechange', () => {
  if (status.hidden) render(); // not while loading
  loadFolders();
  loadShelves();
});

load({ reset: true });
loadFolders();
