// The lesson's history in the editor (the "History" panel): its saved versions, newest
// first, each restorable. Part of editor.js, which hands it the lesson's state it needs.

import { api } from './api.js';
import { formatDateTime } from './i18n.js';
import { $, announce, confirmDialog, errorText, h, t } from './ui.js';

/**
 * Wires the panel. `currentVersion()` is the version the editor shows, `isDirty()` whether it
 * has unsaved edits; `restored(lesson)` adopts a restored version, `failed(message)` shows why
 * a restore failed. Answers `{ refresh }`, which reloads the list while the panel is open.
 */
export function createHistory({ lessonUrl, currentVersion, isDirty, restored, failed }) {
  const panel = $('#history');

  async function refresh() {
    if (!panel.open) return;
    const status = $('#history-status');
    status.textContent = t('editor.historyLoading');
    try {
      const { body } = await api.get(lessonUrl + '/revisions');
      render(body.items ?? []);
      status.textContent = body.items?.length ? '' : t('editor.historyEmpty');
    } catch (err) {
      status.textContent = t('editor.historyFailed', { reason: errorText(err) });
    }
  }

  function render(revisions) {
    const items = revisions.map((rev) => {
      const isCurrent = String(rev.version) === String(currentVersion());
      return h(
        'li',
        { class: isCurrent ? 'history-item is-current' : 'history-item' },
        h(
          'div',
          { class: 'history-text' },
          h('time', { dateTime: new Date(rev.created_at).toISOString(), text: formatDateTime(rev.created_at), dataset: { i18nDatetime: '' } }),
          h('span', {
            class: 'history-meta',
            text: [rev.author_name, rev.title, t('lessons.slideCount', { count: rev.slide_count ?? 0 })].filter(Boolean).join(' · '),
          }),
        ),
        isCurrent
          ? h('span', { class: 'badge', text: t('editor.currentVersion') })
          : h('button', {
              type: 'button',
              class: 'button button-small',
              text: t('editor.restore'),
              attrs: { 'aria-label': t('editor.restoreLabel', { date: formatDateTime(rev.created_at) }) },
              onclick: () => restore(rev),
            }),
      );
    });
    $('#history-list').replaceChildren(...items);
  }

  async function restore(rev) {
    const date = formatDateTime(rev.created_at);
    const ok = await confirmDialog({
      title: t('editor.restoreTitle', { date }),
      message: isDirty() ? t('editor.restoreTextDirty') : t('editor.restoreText'),
      confirm: t('editor.restoreConfirm'),
      danger: isDirty(),
    });
    if (!ok) return;
    try {
      const url = `${lessonUrl}/revisions/${encodeURIComponent(rev.version)}/restore`;
      const { body } = await api.post(url);
      restored(body);
      announce(t('editor.restored', { date }));
      refresh();
    } catch (err) {
      failed(t('editor.restoreFailed', { reason: errorText(err) }));
    }
  }

  panel.addEventListener('toggle', refresh);
  return { refresh };
}
