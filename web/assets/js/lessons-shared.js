// Sharing on "My lessons" (issue 24): the Share dialog of a lesson of one's own (colleagues
// by address, the school library), and the lists of other teachers' lessons: "Shared with
// me" and the school library, each lesson with a read-only preview and "Make a copy".
// Part of lessons.js, which calls `shareDialog` and `initShelves`.

import { api } from './api.js';
import { formatDateTime } from './i18n.js';
import { slideThumbnail } from './thumbs.js';
import { $, announce, errorText, h, setBusy, t } from './ui.js';

const SHELF_SIZE = 50; // one page: a school's shared lessons fit; the search narrows the library
const SEARCH_DELAY_MS = 250;

/** A modal dialog titled `title` holding `content`; `onClose` runs after it is removed. */
function modal(id, title, content, onClose) {
  const dialog = h(
    'dialog',
    { class: 'dialog', attrs: { 'aria-labelledby': id } },
    h('div', { class: 'stack' }, h('h2', { id, text: title }), ...content),
  );
  dialog.addEventListener('close', () => {
    dialog.remove();
    onClose();
  });
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/** The Share dialog of the teacher's lesson; focus returns to `button` when it closes. */
export async function shareDialog(lesson, title, button) {
  const path = '/api/lessons/' + encodeURIComponent(lesson.id);
  let shares;
  try {
    ({ body: shares } = await api.get(path + '/shares'));
  } catch (err) {
    announce(errorText(err));
    return;
  }
  const error = h('p', { class: 'banner banner-error', attrs: { role: 'alert' }, hidden: true });
  const showError = (message) => {
    error.textContent = message ?? '';
    error.hidden = !message;
  };
  const email = h('input', { id: 'share-email', type: 'email', autocomplete: 'off', attrs: { 'aria-describedby': 'share-hint' } });
  const add = h('button', { type: 'submit', class: 'button button-primary', text: t('share.add') });
  const people = h('ul', { id: 'share-people', class: 'share-people', attrs: { 'aria-labelledby': 'share-people-heading' } });
  const nobody = h('p', { class: 'muted', text: t('share.nobody') });
  const listed = h('input', { id: 'share-listed', type: 'checkbox', checked: shares.listed });

  const drawPeople = () => {
    people.replaceChildren(
      ...shares.items.map((person) =>
        h(
          'li',
          { class: 'share-person' },
          h('span', { text: `${person.name} <${person.email}>` }),
          h('button', {
            type: 'button',
            class: 'button button-quiet button-danger-text',
            text: t('share.remove'),
            attrs: { 'aria-label': t('share.removeLabel', { name: person.name, email: person.email }) },
            onclick: (event) => unshare(person, event.currentTarget),
          }),
        ),
      ),
    );
    nobody.hidden = shares.items.length > 0;
  };

  async function unshare(person, removeButton) {
    setBusy(removeButton, true);
    try {
      await api.del(path + '/shares/' + encodeURIComponent(person.account_id));
    } catch (err) {
      if (err.status !== 404) {
        setBusy(removeButton, false);
        return showError(t('share.failed', { reason: errorText(err) }));
      }
    }
    shares.items = shares.items.filter((p) => p.account_id !== person.account_id);
    drawPeople();
    showError(null);
    announce(t('share.removed', { name: person.name }));
    email.focus();
  }

  const form = h(
    'form',
    { class: 'stack', novalidate: true },
    h('div', { class: 'field' }, h('label', { attrs: { for: 'share-email' }, text: t('share.emailLabel') }), email),
    h('p', { id: 'share-hint', class: 'muted', text: t('share.hint') }),
    h('div', { class: 'dialog-actions' }, add),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!email.value.trim()) return email.focus();
    setBusy(add, true);
    try {
      const { body: person } = await api.post(path + '/shares', { email: email.value });
      if (!shares.items.some((p) => p.account_id === person.account_id)) shares.items.push(person);
      drawPeople();
      showError(null);
      email.value = '';
      announce(t('share.added', { name: person.name }));
    } catch (err) {
      const [, message] = Object.entries(err.fields ?? {})[0] ?? [];
      showError(t('share.failed', { reason: message ?? errorText(err) }));
    } finally {
      setBusy(add, false);
      email.focus();
    }
  });
  listed.addEventListener('change', async () => {
    const want = listed.checked;
    try {
      ({ body: shares } = await api.put(path + '/library', { listed: want }));
      showError(null);
      announce(t(want ? 'share.listed' : 'share.unlisted', { title }));
    } catch (err) {
      listed.checked = !want;
      showError(t('share.failed', { reason: errorText(err) }));
    }
  });

  drawPeople();
  const close = h('button', { type: 'button', class: 'button', text: t('share.done'), onclick: () => dialog.close() });
  const dialog = modal(
    'share-title',
    t('share.title', { title }),
    [
      error,
      form,
      h('h3', { id: 'share-people-heading', text: t('share.people') }),
      nobody,
      people,
      h('label', { class: 'checkbox-field share-listed' }, listed, h('span', { text: t('share.library') })),
      h('p', { class: 'muted', text: t('share.libraryHint') }),
      h('div', { class: 'dialog-actions' }, close),
    ],
    () => button.focus(),
  );
  email.focus();
}

/** A read-only preview of another teacher's lesson: its slides, in order, and a copy button. */
async function preview(item, opener, onCopy) {
  let lesson;
  try {
    ({ body: lesson } = await api.get('/api/lessons/' + encodeURIComponent(item.id)));
  } catch (err) {
    announce(errorText(err));
    return;
  }
  const slides = h(
    'ol',
    { class: 'preview-slides' },
    ...lesson.slides.map((slide) =>
      h(
        'li',
        { class: 'preview-slide' },
        slideThumbnail(slide, lesson.theme),
        h('span', { class: 'preview-slide-title', text: slide.title?.trim() || t(`kinds.${slide.kind}`) }),
      ),
    ),
  );
  const copy = h('button', {
    type: 'button',
    class: 'button button-primary',
    text: t('shelves.copy'),
    onclick: async (event) => {
      if (await onCopy(item, event.currentTarget)) dialog.close();
    },
  });
  const close = h('button', { type: 'button', class: 'button', text: t('share.done'), onclick: () => dialog.close() });
  const dialog = modal(
    'preview-title',
    lesson.title,
    [
      h('p', { class: 'muted', text: t('shelves.readOnly', { owner: lesson.owner?.name ?? '' }) }),
      slides,
      h('div', { class: 'dialog-actions' }, close, copy),
    ],
    () => opener.focus(),
  );
  close.focus();
}

/**
 * "Shared with me" and the school library below the teacher's own lessons. `copied(lesson)`
 * runs after a copy was made (the list of one's own lessons shows it).
 */
export function initShelves({ copied, showError }) {
  async function copy(item, button) {
    setBusy(button, true);
    try {
      const { body } = await api.post('/api/lessons/' + encodeURIComponent(item.id) + '/duplicate');
      announce(t('lessons.duplicated', { title: body.title }));
      await copied(body);
      return true;
    } catch (err) {
      showError(t('lessons.duplicateFailed', { reason: errorText(err) }));
      return false;
    } finally {
      setBusy(button, false);
    }
  }

  function shelfItem(item) {
    const title = item.title || t('lessons.untitled');
    return h(
      'li',
      { class: 'lesson-item card' },
      h(
        'div',
        { class: 'lesson-main' },
        h('h3', { class: 'lesson-title', text: title }),
        h(
          'p',
          { class: 'lesson-meta' },
          h('span', { text: t('shelves.by', { owner: item.owner.name }) }),
          h('span', { class: 'meta-sep', attrs: { 'aria-hidden': 'true' }, text: '·' }),
          h('span', { text: t('lessons.slideCount', { count: item.slide_count ?? 0 }) }),
          h('span', { class: 'meta-sep', attrs: { 'aria-hidden': 'true' }, text: '·' }),
          h('span', { text: t('lessons.updated', { date: formatDateTime(item.updated_at) }) }),
        ),
      ),
      h(
        'div',
        { class: 'lesson-actions' },
        h('button', {
          type: 'button',
          class: 'button button-quiet',
          text: t('shelves.open'),
          attrs: { 'aria-label': t('shelves.openLabel', { title }) },
          onclick: (event) => preview(item, event.currentTarget, copy),
        }),
        h('button', {
          type: 'button',
          class: 'button button-quiet',
          text: t('shelves.copy'),
          attrs: { 'aria-label': t('shelves.copyLabel', { title }) },
          onclick: (event) => copy(item, event.currentTarget),
        }),
      ),
    );
  }

  /** Loads a shelf into its list; `empty` is what its status says when it holds nothing. */
  function shelf(path, list, status, empty, query = () => '') {
    let asked = 0;
    return async function load() {
      const mine = ++asked;
      const params = new URLSearchParams({ limit: SHELF_SIZE });
      if (query()) params.set('q', query());
      try {
        const { body } = await api.get(path + '?' + params);
        if (mine !== asked) return;
        list.replaceChildren(...body.items.map(shelfItem));
        status.textContent = body.items.length ? '' : t(empty);
        status.hidden = body.items.length > 0;
      } catch (err) {
        if (mine !== asked) return;
        status.hidden = false;
        status.textContent = t('lessons.loadFailed', { reason: errorText(err) });
      }
    };
  }

  const search = $('#library-search');
  const loadShared = shelf('/api/lessons/shared', $('#shared-list'), $('#shared-status'), 'shelves.sharedEmpty');
  const loadLibrary = shelf('/api/library', $('#library-list'), $('#library-status'), 'shelves.libraryEmpty', () => search.value.trim());
  let timer = null;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(loadLibrary, SEARCH_DELAY_MS);
  });
  const loadAll = () => Promise.all([loadShared(), loadLibrary()]);
  loadAll();
  return loadAll;
}
