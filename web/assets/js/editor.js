// Lesson editor: title, ordered slides, per-kind slide form, save with optimistic
// locking (If-Match), validation errors, conflict handling and revision history.

import { api, apiConfig, downloadFile, loadMedia, uploadMedia } from './api.js';
import { allowedLayout, createThemeControls, renderLayout } from './editor-design.js';
import { createFolderControl } from './editor-folder.js';
import { createHistory } from './editor-history.js';
import { initSlideImport } from './editor-import.js';
import { createPreview } from './editor-preview.js';
import { slideThumbnail } from './thumbs.js';
import { $, announce, clearFieldErrors, confirmDialog, errorText, fieldMessage, h, initPage, setBusy, setFieldError, t } from './ui.js';

const MAX_SLIDES = 500;
const MEDIA_KINDS = ['image', 'video'];
const lessonId = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() ?? '');
const lessonUrl = '/api/lessons/' + encodeURIComponent(lessonId);

const form = $('#slide-form');
const slideList = $('#slide-list');
const titleInput = $('#lesson-title');
const saveButton = $('#save');
const saveStatus = $('#save-status');
const editorError = $('#editor-error');

// ---- state -----------------------------------------------------------------
// `lesson` is the last version the server gave us; `draft` is what the teacher edits.
// Draft slides carry a local `key` so selection and error messages survive reordering
// and saving (new slides have no server id until the first save).

let lesson = null;
let draft = null;
let selectedKey = null;
let changeCount = 0; // bumped on every edit; tells whether edits happened during a save
let savedChangeCount = 0;
let saving = false;
let saveProblem = null; // null | 'invalid' | 'failed': why the last save did not succeed
let errors = { title: null, slides: new Map() }; // slide key -> {field: message}

let nextKey = 1;
const newKey = () => 'k' + nextKey++;
const isDirty = () => changeCount !== savedChangeCount;

// Leaving with unsaved changes (a link, closing the tab, reloading) asks first: the browser
// shows its own question, which pages cannot word.
window.addEventListener('beforeunload', (event) => {
  if (!isDirty() && !saving) return;
  event.preventDefault();
  event.returnValue = '';
});

function toDraft(data, keys = []) {
  return {
    title: data.title ?? '',
    theme: data.theme ?? null,
    slides: (data.slides ?? []).map((s, i) => ({
      key: keys[i] ?? newKey(),
      id: s.id,
      kind: s.kind,
      title: s.title ?? '',
      body: s.body ?? '',
      notes: s.notes ?? '',
      media: s.media ?? '',
      answer: s.answer ?? '',
      seconds: s.seconds ?? null,
      layout: s.layout ?? '',
      alt: s.alt ?? '',
    })),
  };
}

/** The request body: only the fields that belong to each slide's kind. */
function toPayload() {
  return {
    title: draft.title,
    ...(draft.theme ? { theme: draft.theme } : {}), // left out, the lesson keeps its own
    // Sent only once the teacher changed it here: a move made on My lessons meanwhile stays.
    ...(draft.folder !== undefined ? { folder: draft.folder } : {}),
    slides: draft.slides.map((s) => {
      const out = s.id ? { id: s.id } : {};
      Object.assign(out, { kind: s.kind, title: s.title, body: s.body, notes: s.notes });
      if (MEDIA_KINDS.includes(s.kind) && s.media.trim()) out.media = s.media.trim();
      if (s.kind === 'image' && s.alt.trim()) out.alt = s.alt;
      if (s.kind === 'question') out.answer = s.answer;
      if (s.kind === 'timer') out.seconds = s.seconds;
      if (allowedLayout(s)) out.layout = s.layout;
      return out;
    }),
  };
}

const selected = () => draft.slides.find((s) => s.key === selectedKey) ?? null;
const selectedIndex = () => draft.slides.findIndex((s) => s.key === selectedKey);
const preview = createPreview({ selected, theme: () => draft.theme });
const themeControls = createThemeControls({
  onChange(theme) {
    draft.theme = theme;
    renderSlideList();
    preview.schedule();
    changed();
  },
});

const folderControl = createFolderControl({
  onChange(folder) {
    draft.folder = folder;
    changed();
  },
});

function adopt(data, { keys } = {}) {
  lesson = data;
  const previousIndex = draft ? selectedIndex() : 0;
  draft = toDraft(data, keys);
  const keep = draft.slides.find((s) => s.key === selectedKey);
  selectedKey = keep ? keep.key : draft.slides[Math.max(0, Math.min(previousIndex, draft.slides.length - 1))]?.key ?? null;
  savedChangeCount = changeCount;
  errors = { title: null, slides: new Map() };
  titleInput.value = draft.title;
  setFieldError(titleInput, null);
  themeControls.render(draft.theme);
  folderControl.render(data.folder);
  renderAll();
}

// ---- rendering -------------------------------------------------------------

function renderAll() {
  renderSlideList();
  renderForm();
  renderSaveState();
  document.title = t('editor.pageTitleWith', { title: draft.title || t('lessons.untitled') });
}

function slideLabel(slide) {
  return slide.title.trim() || t('editor.untitledSlide');
}

// Each slide's miniature, kept while what it shows stays the same: the list is drawn again
// on every edit, and a picture or video would otherwise be fetched and decoded again.
const thumbs = new Map(); // slide key -> {shows, el}

function thumbnail(slide) {
  const shows = JSON.stringify([slide.kind, slide.media, slide.title, slide.seconds, slide.layout, draft.theme]);
  const kept = thumbs.get(slide.key);
  if (kept?.shows === shows) return kept.el;
  const el = slideThumbnail(slide, draft.theme);
  thumbs.set(slide.key, { shows, el });
  return el;
}

function renderSlideList() {
  const items = draft.slides.map((slide, index) => {
    const isSelected = slide.key === selectedKey;
    const hasError = errors.slides.has(slide.key);
    const button = h(
      'button',
      {
        type: 'button',
        class: 'slide-item',
        tabIndex: isSelected ? 0 : -1, // roving tabindex: one tab stop for the whole list
        dataset: { key: slide.key },
        attrs: isSelected ? { 'aria-current': 'true' } : {},
      },
      h('span', { class: 'slide-num', text: String(index + 1) }),
      thumbnail(slide),
      h(
        'span',
        { class: 'slide-text' },
        h('span', { class: 'slide-kind kind-' + slide.kind, text: t('kinds.' + slide.kind) }),
        h('span', { class: slide.title.trim() ? 'slide-title' : 'slide-title is-empty', text: slideLabel(slide) }),
      ),
      hasError ? h('span', { class: 'slide-error-badge', text: '!', title: t('editor.slideHasErrors') }) : null,
      hasError ? h('span', { class: 'visually-hidden', text: t('editor.slideHasErrors') }) : null,
    );
    return h('li', { draggable: true, dataset: { key: slide.key } }, button);
  });
  slideList.replaceChildren(...items);
  for (const key of thumbs.keys()) if (!draft.slides.some((s) => s.key === key)) thumbs.delete(key);
  $('#slides-empty').hidden = draft.slides.length > 0;
  $('#slide-total').textContent = t('lessons.slideCount', { count: draft.slides.length });
  $('#add-slide').disabled = draft.slides.length >= MAX_SLIDES;
}

function renderForm() {
  const slide = selected();
  form.hidden = !slide;
  $('#no-slide').hidden = Boolean(slide);
  if (!slide) return;
  const index = selectedIndex();
  $('#slide-heading').textContent = t('editor.slideHeading', { n: index + 1, total: draft.slides.length });
  for (const name of ['kind', 'title', 'media', 'body', 'answer', 'notes', 'alt']) form.elements[name].value = slide[name];
  form.elements.seconds.value = slide.seconds ?? '';
  renderKindFields(slide);
  renderLayout(slide);
  renderSecondsHint(slide);
  renderMedia(slide);
  preview.schedule();
  $('[data-action="up"]', form).disabled = index === 0;
  $('[data-action="down"]', form).disabled = index === draft.slides.length - 1;
  $('[data-action="duplicate"]', form).disabled = draft.slides.length >= MAX_SLIDES;
  renderSlideErrors(slide);
}

function renderKindFields(slide) {
  for (const field of form.querySelectorAll('[data-kinds]')) {
    field.hidden = !field.dataset.kinds.split(' ').includes(slide.kind);
  }
}

function renderSecondsHint(slide) {
  const s = slide.seconds;
  const hint = $('#slide-seconds-hint');
  if (!Number.isInteger(s) || s < 1) return (hint.textContent = t('editor.secondsHint'));
  const hms = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const text = hms[0] ? `${hms[0]}:${pad(hms[1])}:${pad(hms[2])}` : `${hms[1]}:${pad(hms[2])}`;
  hint.textContent = t('editor.secondsAs', { time: text });
}
const pad = (n) => String(n).padStart(2, '0');

function renderSlideErrors(slide) {
  clearFieldErrors(form);
  const slideErrors = errors.slides.get(slide.key) ?? {};
  const other = [];
  for (const [field, message] of Object.entries(slideErrors)) {
    const input = form.elements[field];
    if (input instanceof HTMLElement && !input.closest('[hidden]')) setFieldError(input, message);
    else other.push(message);
  }
  const slideError = $('#slide-error');
  slideError.textContent = other.join(' ');
  slideError.hidden = other.length === 0;
}

function renderSaveState() {
  const state = saving ? 'saving' : (saveProblem ?? (isDirty() ? 'dirty' : 'saved'));
  saveStatus.textContent = t('editor.state.' + state);
  saveStatus.dataset.state = state;
  setBusy(saveButton, saving);
}

function showEditorError(message) {
  editorError.textContent = message ?? '';
  editorError.hidden = !message;
}

// ---- pictures and videos ---------------------------------------------------
// The teacher picks or drops a file; it is uploaded at once (with progress and a way to
// cancel) and the slide refers to it. The teacher never sees the id.

const mediaInput = form.elements.media;
const mediaFile = $('#media-file');
const mediaDrop = $('#media-drop');
const mediaPreview = $('#media-preview');
const mediaProgress = $('#media-progress');
const mediaStatus = $('#media-status');
const mediaCancel = $('#media-cancel');
let upload = null; // {controller, key} while a file is on its way

function renderMedia(slide) {
  const id = slide.media;
  const shown = mediaPreview.dataset.media ?? '';
  if (id !== shown) {
    mediaPreview.replaceChildren();
    mediaPreview.dataset.media = id;
    if (id) {
      const path = '/api/media/' + encodeURIComponent(id);
      const preview = slide.kind === 'video' ? h('video', { controls: true, muted: true, preload: 'metadata' }) : h('img', { alt: '' });
      loadMedia(preview, slide.kind === 'video' ? path : path + '/preview');
      mediaPreview.append(preview);
    }
  }
  mediaPreview.hidden = !id;
  const busy = upload?.key === slide.key;
  $('#media-empty').hidden = Boolean(id) || busy;
  $('#media-choose').textContent = t(id ? 'editor.mediaReplace' : 'editor.mediaChoose');
  mediaProgress.hidden = !busy;
  mediaCancel.hidden = !busy;
  if (!busy && !upload) mediaProgress.value = 0;
}

async function startUpload(file) {
  const slide = selected();
  if (!slide || !file) return;
  upload?.controller.abort();
  const name = file.name || t('kinds.' + slide.kind);
  const { mediaMaxBytes } = await apiConfig();
  if (mediaMaxBytes && file.size > mediaMaxBytes) {
    const mb = (bytes) => Math.ceil(bytes / 1e6).toLocaleString();
    mediaStatus.textContent = t('editor.mediaTooLarge', { name, size: mb(file.size), limit: mb(mediaMaxBytes) });
    return;
  }
  const controller = new AbortController();
  upload = { controller, key: slide.key };
  renderMedia(slide);
  const progress = (sent, total) => {
    const percent = total ? Math.floor((sent / total) * 100) : 0;
    mediaProgress.value = percent;
    mediaStatus.textContent = t('editor.mediaUploading', { name, percent });
  };
  progress(0, file.size);
  try {
    const media = await uploadMedia(file, { onProgress: progress, signal: controller.signal });
    const kind = media.media_type.startsWith('video/') ? 'video' : 'image';
    let message = t('editor.mediaUploaded', { name });
    if (slide.kind !== kind) {
      slide.kind = kind;
      message += ' ' + t('editor.mediaKindChanged', { kind: t('kinds.' + kind).toLowerCase() });
    }
    slide.media = media.id;
    const slideErrors = errors.slides.get(slide.key);
    if (slideErrors) {
      delete slideErrors.media;
      if (!Object.keys(slideErrors).length) errors.slides.delete(slide.key);
    }
    upload = null;
    if (selected() === slide) renderForm();
    updateListItem(slide);
    changed();
    mediaStatus.textContent = message;
  } catch (err) {
    upload = null;
    if (err?.name === 'AbortError') mediaStatus.textContent = t('editor.mediaCancelled');
    else if (err?.status === 415) mediaStatus.textContent = t('editor.mediaWrongKind', { name });
    else mediaStatus.textContent = errorText(err);
    if (selected()) renderMedia(selected());
  }
}

mediaFile.addEventListener('change', () => {
  startUpload(mediaFile.files?.[0]);
  mediaFile.value = ''; // the same file may be chosen again
});
mediaCancel.addEventListener('click', () => upload?.controller.abort());
mediaDrop.addEventListener('dragover', (event) => {
  event.preventDefault();
  mediaDrop.classList.add('is-dragging');
});
mediaDrop.addEventListener('dragleave', () => mediaDrop.classList.remove('is-dragging'));
mediaDrop.addEventListener('drop', (event) => {
  event.preventDefault();
  mediaDrop.classList.remove('is-dragging');
  startUpload(event.dataTransfer?.files?.[0]);
});

// ---- editing ---------------------------------------------------------------

function changed() {
  changeCount++;
  if (saveProblem === 'invalid' && !errors.title && errors.slides.size === 0) {
    // Every reported problem has been edited: back to a plain "unsaved changes".
    saveProblem = null;
    showEditorError(null);
  }
  renderSaveState();
}

titleInput.addEventListener('input', () => {
  draft.title = titleInput.value;
  errors.title = null;
  setFieldError(titleInput, null);
  document.title = t('editor.pageTitleWith', { title: draft.title || t('lessons.untitled') });
  changed();
});

form.addEventListener('input', (event) => {
  const slide = selected();
  const input = event.target;
  if (!slide || !input.name) return;
  if (input.name === 'seconds') {
    // Keep what the teacher typed as a number; the server reports a non-integer.
    slide.seconds = Number.isNaN(input.valueAsNumber) ? null : input.valueAsNumber;
    renderSecondsHint(slide);
  } else {
    slide[input.name] = input.value;
  }
  const slideErrors = errors.slides.get(slide.key);
  if (slideErrors) {
    delete slideErrors[input.name];
    if (!Object.keys(slideErrors).length) errors.slides.delete(slide.key);
    setFieldError(input, null);
  }
  if (input.name === 'kind' || input.name === 'layout') {
    if (slide.kind === 'timer' && slide.seconds == null) slide.seconds = 60;
    slide.layout = allowedLayout(slide);
    renderForm();
  }
  updateListItem(slide);
  preview.schedule();
  changed();
});

// Update one list entry in place: rebuilding the list on every keystroke is wasteful.
function updateListItem(slide) {
  const item = slideList.querySelector(`li[data-key="${slide.key}"]`);
  if (!item) return;
  $('.slide-kind', item).textContent = t('kinds.' + slide.kind);
  $('.slide-kind', item).className = 'slide-kind kind-' + slide.kind;
  const title = $('.slide-title', item);
  title.textContent = slideLabel(slide);
  title.classList.toggle('is-empty', !slide.title.trim());
  $('.slide-thumb', item)?.replaceWith(thumbnail(slide));
  if (!errors.slides.has(slide.key)) for (const el of item.querySelectorAll('.slide-error-badge, .slide-error-badge + .visually-hidden')) el.remove();
}

function select(key, { focusList = false } = {}) {
  selectedKey = key;
  renderSlideList();
  renderForm();
  if (focusList) slideList.querySelector(`button[data-key="${key}"]`)?.focus();
}

function move(from, to, { focusList = false } = {}) {
  if (to < 0 || to >= draft.slides.length || from === to) return;
  const [slide] = draft.slides.splice(from, 1);
  draft.slides.splice(to, 0, slide);
  selectedKey = slide.key;
  renderSlideList();
  renderForm();
  changed();
  announce(t('editor.movedTo', { n: to + 1 }));
  if (focusList) slideList.querySelector(`button[data-key="${slide.key}"]`)?.focus();
}

function insertSlide(slide, at) {
  if (draft.slides.length >= MAX_SLIDES) return announce(t('editor.tooManySlides', { max: MAX_SLIDES }));
  draft.slides.splice(at, 0, slide);
  select(slide.key);
  changed();
}

// A PDF's pages, after the selected slide; refused whole when they would not fit.
function insertSlides(slides) {
  if (draft.slides.length + slides.length > MAX_SLIDES) {
    announce(t('editor.tooManySlides', { max: MAX_SLIDES }));
    return false;
  }
  const made = slides.map((s) => ({ ...newSlide('image'), title: s.title, notes: s.notes, media: s.media, alt: s.alt ?? '', layout: s.layout ?? '' }));
  draft.slides.splice(selectedIndex() + 1, 0, ...made);
  select(made[0].key);
  changed();
  return true;
}
initSlideImport({ insert: insertSlides });

function newSlide(kind) {
  return { key: newKey(), kind, title: '', body: '', notes: '', media: '', answer: '', seconds: kind === 'timer' ? 60 : null, layout: '', alt: '' };
}

slideList.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-key]');
  if (button) select(button.dataset.key);
});

slideList.addEventListener('keydown', (event) => {
  const button = event.target.closest('button[data-key]');
  if (!button) return;
  const index = draft.slides.findIndex((s) => s.key === button.dataset.key);
  const last = draft.slides.length - 1;
  let target = null;
  if (event.key === 'ArrowUp') target = index - 1;
  else if (event.key === 'ArrowDown') target = index + 1;
  else if (event.key === 'Home') target = 0;
  else if (event.key === 'End') target = last;
  if (target == null) return;
  event.preventDefault();
  target = Math.max(0, Math.min(last, target));
  if (event.altKey) move(index, target, { focusList: true });
  else select(draft.slides[target].key, { focusList: true });
});

// Drag and drop (optional extra; the buttons and Alt+arrows do the same).
let dragKey = null;
slideList.addEventListener('dragstart', (event) => {
  dragKey = event.target.closest('li')?.dataset.key ?? null;
  event.dataTransfer.effectAllowed = 'move';
  event.dataTransfer.setData('text/plain', dragKey ?? '');
});
slideList.addEventListener('dragover', (event) => {
  if (dragKey) event.preventDefault();
});
slideList.addEventListener('drop', (event) => {
  const over = event.target.closest('li');
  if (!dragKey || !over) return;
  event.preventDefault();
  const from = draft.slides.findIndex((s) => s.key === dragKey);
  const to = draft.slides.findIndex((s) => s.key === over.dataset.key);
  dragKey = null;
  move(from, to);
});
slideList.addEventListener('dragend', () => (dragKey = null));

form.addEventListener('click', async (event) => {
  const action = event.target.closest('[data-action]')?.dataset.action;
  const slide = selected();
  if (!action || !slide) return;
  const index = selectedIndex();
  if (action === 'up' || action === 'down') {
    move(index, action === 'up' ? index - 1 : index + 1);
    // At the top or bottom the pressed button is disabled; keep focus nearby.
    const pressed = $(`[data-action="${action}"]`, form);
    if (pressed.disabled) $(`[data-action="${action === 'up' ? 'down' : 'up'}"]`, form).focus();
  } else if (action === 'duplicate') {
    insertSlide({ ...slide, key: newKey(), id: undefined }, index + 1);
    announce(t('editor.duplicated'));
    $('#slide-title').focus();
  } else if (action === 'delete') {
    const ok = await confirmDialog({
      title: t('editor.deleteSlideTitle', { n: index + 1 }),
      message: t('editor.deleteSlideMessage', { title: slideLabel(slide) }),
      confirm: t('editor.deleteSlideConfirm'),
      danger: true,
    });
    if (!ok) return;
    draft.slides.splice(index, 1);
    errors.slides.delete(slide.key);
    const neighbour = draft.slides[Math.min(index, draft.slides.length - 1)];
    select(neighbour?.key ?? null, { focusList: Boolean(neighbour) });
    if (!neighbour) $('#add-slide').focus();
    changed();
    announce(t('editor.deleted'));
  }
});

const addDialog = $('#add-dialog');
function openAddDialog() {
  addDialog.returnValue = '';
  addDialog.showModal();
}
$('#add-slide').addEventListener('click', openAddDialog);
$('#add-first-slide').addEventListener('click', openAddDialog);
// Handle the choice right on click (the dialog's "close" event comes a moment later,
// and keystrokes typed in that moment would go astray).
addDialog.addEventListener('click', (event) => {
  const kind = event.target.closest('button[value]')?.value;
  if (!kind) return;
  event.preventDefault();
  addDialog.close();
  if (!['text', 'image', 'video', 'question', 'timer'].includes(kind)) return;
  insertSlide(newSlide(kind), selectedIndex() + 1);
  announce(t('editor.added', { kind: t('kinds.' + kind) }));
  $('#slide-title').focus();
});

// ---- saving ----------------------------------------------------------------

async function save({ version = lesson.version } = {}) {
  if (saving) return;
  if (!isDirty() && version === lesson.version) {
    announce(t('editor.state.saved'));
    return;
  }
  const payload = toPayload();
  const sentKeys = draft.slides.map((s) => s.key);
  const sentChangeCount = changeCount;
  saving = true;
  showEditorError(null);
  renderSaveState();
  try {
    const { body } = await api.put(lessonUrl, payload, { ifMatch: version });
    saving = false;
    saveProblem = null;
    if (changeCount === sentChangeCount) {
      adopt(body, { keys: sentKeys });
    } else {
      // The teacher kept typing: keep those edits, but learn the ids of new slides so
      // the next save updates them instead of adding them again.
      lesson = body;
      body.slides.forEach((s, i) => {
        const slide = draft.slides.find((d) => d.key === sentKeys[i]);
        if (slide && !slide.id) slide.id = s.id;
      });
      savedChangeCount = sentChangeCount;
      errors = { title: null, slides: new Map() };
      renderAll();
    }
    announce(t('editor.state.saved'));
    refreshHistory();
  } catch (err) {
    saving = false;
    if (err.status === 422) showValidationErrors(err, sentKeys);
    else if (err.status === 412) {
      saveProblem = null;
      renderSaveState();
      await resolveConflict(err);
      return;
    } else {
      saveProblem = 'failed';
      showEditorError(t('editor.saveFailed', { reason: errorText(err) }));
    }
  }
  renderSaveState();
}

/** Put 422 `fields` next to the right input: "title" or "slides[2].answer". */
function showValidationErrors(err, sentKeys) {
  errors = { title: null, slides: new Map() };
  const general = [];
  for (const [name, message] of Object.entries(err.fields)) {
    const match = /^slides\[(\d+)\](?:\.(\w+))?$/.exec(name);
    if (name === 'title') errors.title = fieldMessage('title', message);
    else if (match && sentKeys[match[1]]) {
      const key = sentKeys[match[1]];
      const slideErrors = errors.slides.get(key) ?? {};
      slideErrors[match[2] ?? '_'] = match[2] ? fieldMessage('slide.' + match[2], message) : message;
      errors.slides.set(key, slideErrors);
    } else general.push(message);
  }
  saveProblem = 'invalid';
  setFieldError(titleInput, errors.title);
  const count = (errors.title ? 1 : 0) + errors.slides.size;
  showEditorError([t('editor.invalid', { count: Math.max(count, 1) }), ...general].join(' '));
  // Jump to the first problem so the teacher sees it straight away.
  const firstKey = draft.slides.find((s) => errors.slides.has(s.key))?.key;
  if (errors.title) {
    renderSlideList();
    if (selected()) renderSlideErrors(selected());
    titleInput.focus();
  } else if (firstKey) {
    select(firstKey);
    (form.querySelector('[aria-invalid="true"]') ?? $('#slide-error')).focus?.();
  } else {
    renderSlideList();
  }
}

const conflictDialog = $('#conflict-dialog');

function askConflict() {
  return new Promise((resolve) => {
    conflictDialog.returnValue = '';
    conflictDialog.addEventListener('close', () => resolve(conflictDialog.returnValue), { once: true });
    conflictDialog.showModal();
  });
}

async function resolveConflict(err) {
  // In a cluster a save can be stored and still come second to one made at the same moment
  // through another server: it is in the history, and the dialog says so.
  const overtaken = err.error?.code === 'save_overtaken';
  conflictDialog.querySelector('#conflict-text').textContent = t(overtaken ? 'conflict.overtakenText' : 'conflict.text');
  if (overtaken) refreshHistory();
  const choice = await askConflict();
  if (choice === 'load') {
    const ok = await confirmDialog({
      title: t('conflict.discardTitle'),
      message: t('conflict.discardText'),
      confirm: t('conflict.discardConfirm'),
      danger: true,
    });
    if (ok) await loadLesson({ announceText: t('conflict.loaded') });
  } else if (choice === 'overwrite') {
    // Saving "on top of" the version that is current now replaces it.
    try {
      const current = err.error.current_version ?? (await fetchLesson()).version;
      await save({ version: current });
    } catch (loadErr) {
      showEditorError(t('editor.saveFailed', { reason: errorText(loadErr) }));
    }
  }
}

saveButton.addEventListener('click', () => save());

document.addEventListener('keydown', (event) => {
  if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === 's') {
    event.preventDefault(); // not the browser's "save page"
    if (draft && !document.querySelector('dialog[open]')) save();
  }
});

window.addEventListener('beforeunload', (event) => {
  if (draft && (isDirty() || saving)) {
    event.preventDefault();
    event.returnValue = ''; // older browsers need this to show the prompt
  }
});

// ---- loading ---------------------------------------------------------------

async function fetchLesson() {
  const { body, headers } = await api.get(lessonUrl);
  // The version is in the body; the ETag carries the same value in quotes.
  body.version ??= (headers.get('ETag') || '').replace(/^W\//, '').replace(/"/g, '');
  return body;
}

async function loadLesson({ announceText } = {}) {
  try {
    const data = await fetchLesson();
    if (data.access === 'read') {
      // Another teacher's lesson (shared, or in the school library): read and copied on My
      // lessons, never edited here, where every save would be refused.
      $('#editor-loading').hidden = true;
      $('#editor-read-only').hidden = false;
      return;
    }
    changeCount = savedChangeCount;
    saveProblem = null;
    showEditorError(null);
    adopt(data);
    $('#editor-loading').hidden = true;
    $('#editor').hidden = false;
    if (announceText) announce(announceText);
    refreshHistory();
  } catch (err) {
    $('#editor-loading').hidden = true;
    if (err.status === 404 || err.status === 403 || err.status === 400) {
      $('#editor-missing').hidden = false;
      $('#editor').hidden = true;
    } else {
      showEditorError(t('editor.loadFailed', { reason: errorText(err) }));
      if (!draft) $('#editor-loading').hidden = false;
    }
  }
}

// ---- history ---------------------------------------------------------------

const history = createHistory({
  lessonUrl,
  currentVersion: () => lesson.version,
  isDirty,
  restored(body) {
    changeCount = savedChangeCount;
    saveProblem = null;
    showEditorError(null);
    adopt(body);
  },
  failed: showEditorError,
});
const refreshHistory = history.refresh;

// ---- lesson file -----------------------------------------------------------

// The file holds what is saved, so unsaved edits are saved first.
$('#export').addEventListener('click', async (event) => {
  const button = event.currentTarget;
  const status = $('#export-status');
  setBusy(button, true);
  status.textContent = t('editor.exporting');
  try {
    if (isDirty()) await save();
    if (isDirty()) {
      status.textContent = t('editor.exportUnsaved');
      return;
    }
    await downloadFile(lessonUrl + '/export', 'lesson.classcast.zip');
    status.textContent = t('editor.exported');
  } catch (err) {
    status.textContent = t('editor.exportFailed', { reason: errorText(err) });
  } finally {
    setBusy(button, false);
  }
});

// ---- start -----------------------------------------------------------------

await initPage();
document.addEventListener('languagechange', () => {
  if (draft) renderAll();
  refreshHistory();
});
await loadLesson();
// A brand-new lesson still has its placeholder title: invite the teacher to name it.
if (draft && !draft.slides.length && draft.title === t('lessons.untitled')) titleInput.select();
