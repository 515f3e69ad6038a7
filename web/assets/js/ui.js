// Shared page pieces: DOM helpers, the app header (brand, teacher, sign-out, language),
// status announcements, confirm dialogs and error display.

import { api, clearSession } from './api.js';
import { fillLanguageSelect, has, initI18n, t, tr, translate } from './i18n.js';

/**
 * Build an element. props: {class, text, i18n, args, dataset, attrs, on*: handler, any DOM
 * property}. Children may be nodes, strings (added as text, never parsed) or null.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'i18n') el.dataset.i18n = value;
    else if (key === 'args') el.dataset.i18nArgs = JSON.stringify(value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'attrs') for (const [a, v] of Object.entries(value)) el.setAttribute(a, v);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2).toLowerCase(), value);
    else el[key] = value;
  }
  el.append(...children.filter((c) => c != null && c !== false));
  if (props.i18n) el.textContent = t(props.i18n, props.args);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

// ---- page setup ------------------------------------------------------------

/**
 * Load translations and build the header. With {auth: true} the teacher is fetched
 * from /api/me (a 401 sends the browser to /login) and returned.
 */
export async function initPage({ auth = true } = {}) {
  const me = auth ? api.get('/api/me').then((r) => r.body) : null;
  await initI18n();
  renderHeader(null, auth); // brand and language now, even if /api/me is slow
  if (!auth) return null;
  const account = await me;
  renderHeader(account, auth);
  return account;
}

function renderHeader(account, auth) {
  const header = $('[data-app-header]');
  if (!header) return;
  const brand = h(
    'a',
    { class: 'brand', href: auth ? '/lessons' : '/login' },
    h('img', { src: new URL('../favicon.svg', import.meta.url).href, alt: '', width: 28, height: 28 }),
    h('span', { text: 'classcast' }),
  );
  const tools = h('div', { class: 'header-tools' });
  if (account) {
    tools.append(
      h('span', { class: 'header-user', text: account.name, title: account.email }),
      h('button', { type: 'button', class: 'button button-quiet', i18n: 'header.signOut', onclick: signOut }),
    );
  }
  tools.append(languageSwitcher());
  header.replaceChildren(h('div', { class: 'header-inner' }, brand, auth ? mainNav() : null, tools));
}

/** "My lessons" and "Present": the two places a signed-in teacher works in. */
function mainNav() {
  const here = location.pathname;
  // The editor (/lessons/…) lies within "My lessons": marked as current, but not as this page.
  const link = (href, key, current) =>
    h('a', { href, class: 'header-nav-link', i18n: key, attrs: current ? { 'aria-current': here === href ? 'page' : 'true' } : {} });
  return h(
    'nav',
    { class: 'header-nav', attrs: { 'aria-label': t('header.nav'), 'data-i18n-aria-label': 'header.nav' } },
    link('/lessons', 'header.lessons', here === '/lessons' || here.startsWith('/lessons/')),
    link('/teach', 'header.present', here === '/teach'),
  );
}

function languageSwitcher() {
  const select = h('select', { id: 'language-select', class: 'language-select' });
  fillLanguageSelect(select);
  return h(
    'div',
    { class: 'language-switcher' },
    h('label', { htmlFor: 'language-select', class: 'visually-hidden', i18n: 'header.language' }),
    select,
  );
}

async function signOut() {
  try {
    await api.post('/api/auth/logout', undefined, { redirectOn401: false });
  } catch {
    // Signing out locally is what matters; the token expires on its own.
  }
  clearSession();
  location.assign('/login');
}

// ---- announcements and errors ----------------------------------------------

/** Tell screen-reader users about a change (polite live region, visually hidden). */
export function announce(message) {
  let region = $('#live-region');
  if (!region) {
    region = h('div', { id: 'live-region', class: 'visually-hidden', attrs: { 'aria-live': 'polite' } });
    document.body.append(region);
  }
  // Clearing first makes repeated identical messages be read again.
  region.textContent = '';
  setTimeout(() => (region.textContent = message), 50);
}

/** A translated message for an ApiError (by code), else the server's own message. */
export function errorText(err) {
  const key = 'errors.' + (err?.code ?? 'unknown');
  // "Try again in {seconds} seconds" needs Retry-After; "…_later" variants do without.
  if (err?.retryAfter == null && has(key + '_later')) return t(key + '_later');
  if (has(key)) return t(key, { seconds: err.retryAfter });
  if (err?.status === 0) return t('errors.network_error');
  return err?.message || t('errors.unknown');
}

/**
 * The message for a 422 field error: our translated rule for known fields (the server
 * writes English), else the server's own text. `name` is e.g. "email" or "slide.answer".
 */
export function fieldMessage(name, serverMessage) {
  const key = 'fieldErrors.' + name;
  return tr(key, serverMessage);
}

/** Show an error message (or clear it with null) below a form control. */
export function setFieldError(input, message) {
  const id = input.id + '-error';
  let note = document.getElementById(id);
  const describedBy = (input.getAttribute('aria-describedby') || '').split(' ').filter((x) => x && x !== id);
  if (!message) {
    note?.remove();
    input.removeAttribute('aria-invalid');
    setDescribedBy(input, describedBy);
    return;
  }
  if (!note) {
    note = h('p', { id, class: 'field-error' });
    (input.closest('.field') ?? input.parentElement).append(note);
  }
  note.textContent = message;
  input.setAttribute('aria-invalid', 'true');
  setDescribedBy(input, [...describedBy, id]);
}

function setDescribedBy(input, ids) {
  if (ids.length) input.setAttribute('aria-describedby', ids.join(' '));
  else input.removeAttribute('aria-describedby');
}

export function clearFieldErrors(root) {
  for (const input of root.querySelectorAll('[aria-invalid="true"]')) setFieldError(input, null);
}

/** Disable a button while work is in progress and show that it is busy. */
export function setBusy(button, busy) {
  button.disabled = busy;
  button.classList.toggle('is-busy', busy);
  if (busy) button.setAttribute('aria-busy', 'true');
  else button.removeAttribute('aria-busy');
}

// ---- dialogs ---------------------------------------------------------------

/**
 * Ask for confirmation in a modal <dialog>. Resolves to true when confirmed.
 * Options: {title, message, confirm, cancel, danger}; texts are already translated.
 */
export function confirmDialog({ title, message, confirm, cancel = t('common.cancel'), danger = false, extra = null }) {
  return new Promise((resolve) => {
    const dialog = h(
      'dialog',
      { class: 'dialog', attrs: { 'aria-labelledby': 'confirm-title' } },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: 'confirm-title', text: title }),
        message ? h('p', { text: message }) : null,
        extra ? h('p', { text: extra.message }) : null,
        h(
          'div',
          { class: 'dialog-actions' },
          h('button', { value: 'cancel', class: 'button', text: cancel }),
          extra ? h('button', { value: 'extra', class: 'button button-danger', text: extra.confirm }) : null,
          h('button', { value: 'confirm', class: danger ? 'button button-danger' : 'button button-primary', text: confirm }),
        ),
      ),
    );
    dialog.addEventListener('close', () => {
      dialog.remove();
      // `extra`: the second way to confirm, when one was offered.
      resolve(dialog.returnValue === 'extra' ? 'extra' : dialog.returnValue === 'confirm');
    });
    document.body.append(dialog);
    dialog.showModal();
    // Focus the safe choice first.
    dialog.querySelector('button[value="cancel"]').focus();
  });
}

/** Validate a `next` redirect target: same-origin absolute paths only. */
export function safeNext(value, fallback = '/lessons') {
  if (typeof value !== 'string' || !/^\/(?![/\\])/.test(value)) return fallback;
  try {
    const url = new URL(value, location.origin);
    if (url.origin !== location.origin || url.pathname.startsWith('/login')) return fallback;
    return url.pathname + url.search + url.hash;
  } catch {
    return fallback;
  }
}

export { t, translate };
