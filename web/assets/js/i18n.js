// Translations. Adding a language = one JSON file in ../i18n/ plus one entry here.
//
// Markup conventions (all re-applied by translate() when the language changes):
//   data-i18n="key"              → textContent
//   data-i18n-args='{"n": 3}'    → parameters for every data-i18n* attribute
//   data-i18n-placeholder="key"  → placeholder attribute
//   data-i18n-aria-label="key"   → aria-label attribute
//   data-i18n-title="key"        → title attribute
//   <time datetime="…" data-i18n-datetime> → formatted date and time

export const LANGUAGES = [
  { code: 'en', name: 'English' },
  { code: 'nl', name: 'Nederlands' },
];
export const LANG_KEY = 'classcast.lang';
const FALLBACK = 'en';

let lang = FALLBACK;
let dict = {};
let fallbackDict = {};

const supported = (code) => LANGUAGES.some((l) => l.code === code);

export function pickLanguage() {
  const stored = localStorage.getItem(LANG_KEY);
  if (stored && supported(stored)) return stored;
  for (const tag of navigator.languages || [navigator.language]) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (supported(base)) return base;
  }
  return FALLBACK;
}

async function loadDict(code) {
  const res = await fetch(new URL('../i18n/' + code + '.json', import.meta.url));
  if (!res.ok) throw new Error('Missing translations for ' + code);
  return res.json();
}

export function getLanguage() {
  return lang;
}

/** The browser's own regional variant of the chosen language (en-GB dates for en), if any. */
function locale() {
  return (navigator.languages || []).find((tag) => tag.toLowerCase().split('-')[0] === lang) ?? lang;
}

export async function initI18n() {
  await useLanguage(pickLanguage());
}

async function useLanguage(code) {
  // Keep English loaded too, so a key missing from a new language still reads well.
  const [main, fallback] = await Promise.all([
    loadDict(code).catch(() => null),
    code === FALLBACK ? null : loadDict(FALLBACK).catch(() => ({})),
  ]);
  if (main) {
    lang = code;
    dict = main;
    fallbackDict = fallback ?? main;
  } else {
    lang = FALLBACK;
    dict = fallbackDict = fallback ?? (await loadDict(FALLBACK).catch(() => ({})));
  }
  document.documentElement.lang = lang;
  translate();
}

export async function setLanguage(code) {
  if (!supported(code)) return;
  localStorage.setItem(LANG_KEY, code);
  await useLanguage(code);
  // Pages listen for this to redraw text that they build themselves.
  document.dispatchEvent(new CustomEvent('languagechange', { detail: { lang } }));
}

export function has(key) {
  return lookup(key) != null || lookup(key + '.other') != null; // plain or plural
}

/**
 * Translate a key. `{name}` placeholders are filled from params. When params.count is a
 * number and the dictionary has "key.one" / "key.other" (Intl plural categories), the
 * matching plural form is used.
 */
export function t(key, params = {}) {
  let text;
  if (typeof params.count === 'number') {
    const category = new Intl.PluralRules(locale()).select(params.count);
    text = lookup(`${key}.${category}`) ?? lookup(`${key}.other`);
  }
  text ??= lookup(key) ?? key;
  return text.replace(/\{(\w+)\}/g, (match, name) =>
    name in params ? String(params[name]) : match,
  );
}

/** `t(key)`, or `fallback` before the translations have loaded (or where one is missing). */
export function tr(key, fallback, params) {
  return has(key) ? t(key, params) : fallback;
}

function lookup(key) {
  return dict[key] ?? fallbackDict[key];
}

export function formatDateTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso ?? '');
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(date);
}

function argsOf(el) {
  try {
    return el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : {};
  } catch {
    return {};
  }
}

// Elements whose key is missing keep the text they have (the English in the HTML),
// which also keeps pages readable if the dictionary could not be loaded.
export function translate(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    if (has(el.dataset.i18n)) el.textContent = t(el.dataset.i18n, argsOf(el));
  }
  const attrs = [
    ['data-i18n-placeholder', 'placeholder'],
    ['data-i18n-aria-label', 'aria-label'],
    ['data-i18n-title', 'title'],
  ];
  for (const [source, target] of attrs) {
    for (const el of root.querySelectorAll(`[${source}]`)) {
      const key = el.getAttribute(source);
      if (has(key)) el.setAttribute(target, t(key, argsOf(el)));
    }
  }
  for (const el of root.querySelectorAll('time[data-i18n-datetime]')) {
    el.textContent = formatDateTime(el.dateTime);
  }
}

/**
 * Fills a <select> with the languages, each named in itself (so it can be found by someone
 * who can't read the current one), the current one chosen; choosing one switches to it.
 */
export function fillLanguageSelect(select) {
  for (const { code, name } of LANGUAGES) {
    const option = new Option(name, code, false, code === getLanguage());
    option.lang = code;
    select.append(option);
  }
  select.addEventListener('change', () => setLanguage(select.value));
}
