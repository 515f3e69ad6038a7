// Sign in / create account.

import { api, apiConfig, setSession } from './api.js';
import { getLanguage } from './i18n.js';
import { $, clearFieldErrors, errorText, fieldMessage, initPage, safeNext, setBusy, setFieldError, t } from './ui.js';

const next = safeNext(new URLSearchParams(location.search).get('next'));

await initPage({ auth: false });

// ---- tabs (WAI-ARIA tabs pattern: arrow keys move between tabs) -------------

const tabs = [...document.querySelectorAll('[role="tab"]')];

function selectTab(tab, { focus = false } = {}) {
  for (const other of tabs) {
    const selected = other === tab;
    other.setAttribute('aria-selected', String(selected));
    other.tabIndex = selected ? 0 : -1;
    document.getElementById(other.getAttribute('aria-controls')).hidden = !selected;
  }
  if (focus) tab.focus();
  // Keep the choice in the URL so "create account" links can be shared.
  const hash = tab.id === 'tab-register' ? '#register' : '';
  history.replaceState(null, '', location.pathname + location.search + hash);
}

for (const tab of tabs) {
  tab.addEventListener('click', () => selectTab(tab));
  tab.addEventListener('keydown', (event) => {
    const i = tabs.indexOf(tab);
    const target = {
      ArrowRight: tabs[(i + 1) % tabs.length],
      ArrowLeft: tabs[(i - 1 + tabs.length) % tabs.length],
      Home: tabs[0],
      End: tabs[tabs.length - 1],
    }[event.key];
    if (target) {
      event.preventDefault();
      selectTab(target, { focus: true });
    }
  });
}

if (location.hash === '#register') selectTab($('#tab-register'));

// ---- what arrives by mail: reset a password, confirm an address ---------------

// The link's token travels after '#', so it never reaches a server log or a Referer.
const mailed = new URLSearchParams(location.hash.slice(1));
const ASIDE = ['panel-forgot', 'panel-reset', 'panel-confirm'];

// Shows one of the panels beside the tabs, or (null) the tabs again.
function showAside(id) {
  const tablist = $('[role="tablist"]');
  tablist.hidden = id !== null;
  for (const tab of tabs) {
    const panel = document.getElementById(tab.getAttribute('aria-controls'));
    panel.hidden = id !== null || tab.getAttribute('aria-selected') !== 'true';
  }
  for (const other of ASIDE) document.getElementById(other).hidden = other !== id;
  if (id === null) history.replaceState(null, '', location.pathname + location.search);
  const first = id && $(`#${id} input`);
  if (first) first.focus();
}

// A mailed link pasted into this very tab changes only the fragment: read it afresh.
addEventListener('hashchange', () => {
  const now = new URLSearchParams(location.hash.slice(1));
  if (now.has('reset') || now.has('confirm')) location.reload();
});

for (const back of document.querySelectorAll('[data-back]')) {
  back.addEventListener('click', () => showAside(null));
}

apiConfig().then(({ mail }) => {
  $('#forgot-row').hidden = !mail;
});
$('#forgot-open').addEventListener('click', () => {
  $('#forgot-email').value = $('#signin-email').value;
  showAside('panel-forgot');
});

if (mailed.has('reset')) showAside('panel-reset');
if (mailed.has('confirm')) {
  showAside('panel-confirm');
  const panel = $('#panel-confirm');
  try {
    const { body } = await api.post('/api/auth/confirm', { token: mailed.get('confirm') }, { auth: false, retry: true });
    setSession(body);
    location.assign(next);
  } catch (err) {
    $('.form-notice', panel).hidden = true;
    $('.form-error', panel).textContent = errorText(err);
    $('.form-error', panel).hidden = false;
  }
}

// ---- forms -----------------------------------------------------------------

// Client-side checks give instant, translated feedback; the server checks again.
function validate(form) {
  const errors = {};
  const { name, email, password } = form.elements;
  if (name && !name.value.trim()) errors.name = t('validation.nameRequired');
  else if (name && name.value.trim().length > 100) errors.name = t('validation.nameTooLong');
  if (!email) {
    // Choosing a new password: no address to check.
  } else if (!email.value.trim()) errors.email = t('validation.emailRequired');
  else if (!email.validity.valid) errors.email = t('validation.emailInvalid');
  if (!password) return errors;
  if (!password.value) errors.password = t('validation.passwordRequired');
  else if (form.id !== 'signin-form' && password.value.length < 8) errors.password = t('validation.passwordShort');
  return errors;
}

function showErrors(form, fields, general) {
  const formError = $('.form-error', form);
  const leftover = [];
  for (const [name, message] of Object.entries(fields)) {
    const input = form.elements[name];
    if (input instanceof HTMLElement) setFieldError(input, message);
    else leftover.push(message);
  }
  if (general) leftover.unshift(general);
  formError.textContent = leftover.join(' ');
  formError.hidden = leftover.length === 0;
  const firstInvalid = $('[aria-invalid="true"]', form);
  if (firstInvalid) firstInvalid.focus();
}

async function submit(form, path, payload) {
  const button = $('button[type="submit"]', form);
  clearFieldErrors(form);
  showErrors(form, {}, null);

  const invalid = validate(form);
  if (Object.keys(invalid).length) return showErrors(form, invalid, null);

  setBusy(button, true);
  try {
    // Signing in again on the next host is safe (at worst a spare session); registering
    // twice is not.
    const retry = path === '/api/auth/login' || path === '/api/auth/password-reset';
    const { body } = await api.post(path, payload, { auth: false, retry });
    if (body?.status === 'received') {
      // A reset link was asked for: the answer is the same whether the address has an account.
      $('.form-notice', form).hidden = false;
      setBusy(button, false);
      return;
    }
    if (body?.status === 'pending') {
      // Registration needs an administrator's approval or a confirmed address: nothing to
      // sign in with yet.
      const notice = body.awaiting === 'confirmation' ? 'login.confirmSent' : 'login.pending';
      $(`[data-i18n="${notice}"]`, form).hidden = false;
      form.reset();
      setBusy(button, false);
      return;
    }
    setSession(body);
    location.assign(next);
    return;
  } catch (err) {
    if (err.status === 422 && Object.keys(err.fields).length) {
      const fields = Object.fromEntries(Object.entries(err.fields).map(([k, v]) => [k, fieldMessage(k, v)]));
      showErrors(form, fields, null);
    } else if (err.code === 'email_taken') {
      showErrors(form, { email: t('errors.email_taken') }, null);
    } else {
      showErrors(form, {}, errorText(err));
    }
    // Keep the button disabled while the server asks us to wait.
    if (err.retryAfter && (err.status === 429 || err.status === 503)) {
      setTimeout(() => setBusy(button, false), err.retryAfter * 1000);
      return;
    }
  }
  setBusy(button, false);
}

$('#signin-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const { email, password } = event.target.elements;
  submit(event.target, '/api/auth/login', { email: email.value.trim(), password: password.value });
});

$('#register-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const { name, email, password } = event.target.elements;
  submit(event.target, '/api/auth/register', {
    email: email.value.trim(),
    name: name.value.trim(),
    password: password.value,
    language: getLanguage(),
  });
});

$('#forgot-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const { email } = event.target.elements;
  submit(event.target, '/api/auth/password-reset', { email: email.value.trim(), language: getLanguage() });
});

$('#reset-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const { password } = event.target.elements;
  submit(event.target, '/api/auth/password-reset/confirm', { token: mailed.get('reset'), password: password.value });
});

// Editing a field clears its error.
document.addEventListener('input', (event) => {
  if (event.target.getAttribute?.('aria-invalid') === 'true') setFieldError(event.target, null);
});

$('[role="tabpanel"]:not([hidden]) input')?.focus();
