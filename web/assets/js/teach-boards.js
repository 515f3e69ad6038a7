// The console's set-up: the list of the teacher's boards, pairing one (typed, or scanned from
// its QR code), renaming and unpairing, and the form to start presenting. The rest of the
// console (controls, drawing) is teach.js; what it shares comes in through createBoards.

import { api } from './api.js';
import { formatDateTime } from './i18n.js';
import { $, announce, clearFieldErrors, confirmDialog, errorText, fieldMessage, h, setBusy, setFieldError, t } from './ui.js';

// A board's QR code opens /teach#pair=123456&board=K7QM. The link is kept for this tab
// (through signing in, which would drop the fragment) and taken off the address bar, so a
// shared or bookmarked address never carries a code.
const PAIR_LINK_KEY = 'classcast.pairLink';
const PAIR_LINK_FOR_MS = 10 * 60 * 1000; // a code lives 10 minutes at most
{
  const link = new URLSearchParams(location.hash.slice(1));
  const code = link.get('pair');
  if (code !== null) {
    if (/^\d{6}$/.test(code)) {
      const board = (link.get('board') || '').replace(/[^A-Z0-9]/g, '').slice(0, 8);
      sessionStorage.setItem(PAIR_LINK_KEY, JSON.stringify({ code, board, at: Date.now() }));
    }
    history.replaceState(null, '', location.pathname + location.search);
  }
}

/**
 * `ui`: the console's state; `live`: its live channel; `command(board, op, args)`;
 * `openControls(board)`; `syncText(board)`: what the console says of the board's sync;
 * `changed()`: redraw after the boards changed; `pageError(message)`; `keepsNameOff()`:
 * whether the teacher keeps their name off boards.
 */
export function createBoards({ ui, live, command, openControls, syncText, changed, pageError, keepsNameOff }) {
  function renderList() {
    const list = $('#board-list');
    const status = $('#boards-status');
    if (!ui.boardsLoaded) return;
    const items = [...ui.boards.values()].sort((a, b) => a.name.localeCompare(b.name));
    status.hidden = items.length > 0;
    status.textContent = t('teach.noBoards');
    keepFocus(list, () => list.replaceChildren(...items.map(boardItem)));
    // Pairing comes first for a teacher without boards.
    $('#pair-card').classList.toggle('is-first', items.length === 0);
  }

  /** Redraw without losing the keyboard focus: buttons carry a stable data-focus-key. */
  function keepFocus(container, redraw) {
    const key = container.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
    redraw();
    if (key) container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
  }

  function boardItem(board) {
    const state = live.state(board.id);
    const online = board.online;
    const meta = [];
    meta.push(
      h('span', { class: 'board-online ' + (online ? 'is-online' : 'is-offline'), text: online ? t('teach.online') : t('teach.offline') }),
    );
    if (board.fingerprint) meta.push(h('span', { class: 'board-fingerprint-tag', text: t('teach.fingerprint', { fingerprint: board.fingerprint }) }));
    if (state?.lesson) {
      meta.push(
        h('span', {
          text: t('teach.showing', { title: state.lesson.title, n: (state.slide_index ?? 0) + 1, total: state.lesson.slide_count }),
        }),
      );
      const sync = syncText(board.id);
      if (online && sync.kind === 'behind') meta.push(h('span', { class: 'sync-status', dataset: { sync: sync.kind }, text: sync.text }));
    }
    const actions = [];
    if (state?.lesson) {
      actions.push(
        h('button', {
          type: 'button',
          class: 'button button-primary button-small',
          text: t('teach.openControls'),
          dataset: { focusKey: board.id + ':open' },
          onclick: () => openControls(board.id),
        }),
      );
    }
    actions.push(
      h('button', {
        type: 'button',
        class: 'button button-quiet button-small',
        text: t('teach.rename'),
        dataset: { focusKey: board.id + ':rename' },
        attrs: { 'aria-label': t('teach.renameLabel', { name: board.name }) },
        onclick: () => rename(board),
      }),
      h('button', {
        type: 'button',
        class: 'button button-quiet button-small button-danger-text',
        text: t('teach.unpair'),
        dataset: { focusKey: board.id + ':unpair' },
        attrs: { 'aria-label': t('teach.unpairLabel', { name: board.name }) },
        onclick: () => unpair(board),
      }),
    );
    return h(
      'li',
      { class: 'board-item card' },
      h(
        'div',
        { class: 'board-main' },
        h('h3', { class: 'board-name', text: board.name }),
        h('p', { class: 'board-meta' }, ...meta),
        board.paired_at ? h('p', { class: 'board-paired', text: t('teach.pairedAt', { date: formatDateTime(board.paired_at) }) }) : null,
      ),
      h('div', { class: 'board-actions' }, ...actions),
    );
  }

  function renderStartForm() {
    const card = $('#start-card');
    card.hidden = !ui.boardsLoaded || ui.boards.size === 0;
    const boardSelect = $('#start-board');
    const previous = boardSelect.value || ui.viewBoard;
    boardSelect.replaceChildren(
      ...[...ui.boards.values()]
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((b) =>
          h('option', { value: b.id, text: `${b.name} (${b.online ? t('teach.online') : t('teach.offline')})`, selected: b.id === previous }),
        ),
    );
    const lessonSelect = $('#start-lesson');
    const chosen = lessonSelect.value;
    lessonSelect.replaceChildren(
      ...ui.lessons.map((l) =>
        h('option', {
          value: l.id,
          text: `${l.title || t('lessons.untitled')} · ${t('lessons.slideCount', { count: l.slide_count ?? 0 })}`,
          selected: l.id === chosen,
        }),
      ),
    );
    $('#start-no-lessons').hidden = ui.lessons.length > 0;
    $('#start-form').hidden = ui.lessons.length === 0;
  }

  async function pair(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const codeInput = $('#pair-code');
    const nameInput = $('#pair-name');
    const formError = $('.form-error', form);
    formError.hidden = true;
    clearFieldErrors(form);
    const code = codeInput.value.replace(/\D/g, '');
    const name = nameInput.value.trim();
    let invalid = null;
    if (code.length !== 6) {
      setFieldError(codeInput, t('teach.codeInvalid'));
      invalid ??= codeInput;
    }
    if (!name) {
      setFieldError(nameInput, t('teach.nameRequired'));
      invalid ??= nameInput;
    }
    if (invalid) return invalid.focus();

    const submit = $('#pair-submit');
    setBusy(submit, true);
    try {
      const { body } = await api.post('/api/boards/pair', { code, name });
      ui.boards.set(body.id, { ...body, state_version: String(body.state_version ?? 0), rendered_version: String(body.rendered_version ?? 0) });
      live.watch(body.id);
      // A teacher who keeps their name off boards keeps it off this one's screen from now on.
      if (keepsNameOff()) command(body.id, 'show_name', { on: false });
      form.reset();
      $('#pair-scanned').hidden = true;
      announce(t('teach.paired', { name: body.name, fingerprint: body.fingerprint }));
      changed();
      $('#start-board').value = body.id;
      $('#start-board').focus();
    } catch (err) {
      if (err.status === 404) {
        setFieldError(codeInput, t('teach.codeNotFound'));
        codeInput.focus();
      } else if (err.status === 422 && Object.keys(err.fields).length) {
        const inputs = { code: codeInput, name: nameInput };
        let first = null;
        for (const [field, message] of Object.entries(err.fields)) {
          const input = inputs[field];
          if (input) {
            setFieldError(input, fieldMessage('board.' + field, message));
            first ??= input;
          } else {
            formError.textContent = message;
            formError.hidden = false;
          }
        }
        first?.focus();
      } else {
        formError.textContent = errorText(err);
        formError.hidden = false;
      }
    } finally {
      setBusy(submit, false);
    }
  }

  function rename(board) {
    const input = h('input', { id: 'rename-input', type: 'text', maxLength: 100, required: true, value: board.name, autocomplete: 'off' });
    const error = h('p', { class: 'form-error', attrs: { role: 'alert' }, hidden: true });
    const dialog = h(
      'dialog',
      { class: 'dialog', attrs: { 'aria-labelledby': 'rename-title' } },
      h(
        'form',
        { method: 'dialog', class: 'stack' },
        h('h2', { id: 'rename-title', text: t('teach.renameTitle', { name: board.name }) }),
        error,
        h('div', { class: 'field' }, h('label', { htmlFor: 'rename-input', text: t('teach.boardNameLabel') }), input),
        h(
          'div',
          { class: 'dialog-actions' },
          h('button', { value: 'cancel', class: 'button', text: t('common.cancel'), formNoValidate: true }),
          h('button', { value: 'save', class: 'button button-primary', text: t('teach.renameSave') }),
        ),
      ),
    );
    dialog.querySelector('form').addEventListener('submit', async (event) => {
      if (event.submitter?.value !== 'save') return;
      event.preventDefault();
      const name = input.value.trim();
      if (!name) {
        setFieldError(input, t('teach.nameRequired'));
        return input.focus();
      }
      const button = event.submitter;
      setBusy(button, true);
      try {
        const { body } = await api.put('/api/boards/' + encodeURIComponent(board.id), { name });
        const b = ui.boards.get(board.id);
        if (b) b.name = body?.name ?? name;
        dialog.close('saved');
        announce(t('teach.renamed', { name }));
        changed();
      } catch (err) {
        error.textContent = err.fields?.name ? fieldMessage('board.name', err.fields.name) : errorText(err);
        error.hidden = false;
        setBusy(button, false);
      }
    });
    dialog.addEventListener('close', () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    input.select();
  }

  /** Removes the board from this teacher's list, or (the dialog's second choice) ends the
   *  board's identity for every teacher: for a board whose key may have been copied. */
  async function unpair(board) {
    const ok = await confirmDialog({
      title: t('teach.unpairTitle', { name: board.name }),
      message: t('teach.unpairMessage'),
      confirm: t('teach.unpairConfirm'),
      danger: true,
      extra: { message: t('teach.revokeMessage'), confirm: t('teach.revokeConfirm') },
    });
    if (!ok) return;
    const revoke = ok === 'extra';
    // Our own lesson on it would otherwise stay up with nobody here able to end it.
    const state = live.state(board.id);
    if (state?.lesson && ui.lessons.some((l) => l.id === state.lesson.id)) {
      await Promise.race([command(board.id, 'end').catch(() => {}), new Promise((r) => setTimeout(r, 3000))]);
    }
    try {
      const path = '/api/boards/' + encodeURIComponent(board.id);
      await (revoke ? api.post(path + '/revoke') : api.del(path));
    } catch (err) {
      // Already gone is what the teacher wanted anyway.
      if (err.status !== 404) return pageError(t('teach.unpairFailed', { reason: errorText(err) }));
    }
    ui.boards.delete(board.id);
    live.unwatch(board.id);
    if (ui.viewBoard === board.id) ui.viewBoard = null;
    announce(t(revoke ? 'teach.revoked' : 'teach.unpaired', { name: board.name }));
    changed();
    $('#boards-heading').focus();
  }

  function fillHelp() {
    const [before, after = ''] = t('teach.pairHelp').split('{url}');
    $('#pair-help').replaceChildren(before, h('strong', { text: location.origin + '/board' }), after);
  }

  /** Fills in the code of a scanned board and asks for its name: the teacher checks the board
   *  shows the same letters, names it and presses "Add board". */
  function prefillScanned() {
    let link = null;
    try {
      link = JSON.parse(sessionStorage.getItem(PAIR_LINK_KEY) || 'null');
    } catch {
      // Not ours: ignored.
    }
    sessionStorage.removeItem(PAIR_LINK_KEY);
    if (!link || Date.now() - link.at > PAIR_LINK_FOR_MS) return;
    ui.showSetup = true;
    changed();
    $('#pair-code').value = link.code;
    const scanned = $('#pair-scanned');
    scanned.textContent = link.board
      ? t('teach.scannedWithFingerprint', { fingerprint: link.board })
      : t('teach.scanned');
    scanned.hidden = false;
    $('#pair-card').scrollIntoView({ block: 'start' });
    $('#pair-name').focus();
  }

  return { renderList, renderStartForm, pair, rename, unpair, fillHelp, prefillScanned };
}
