// The live channel shared by the board page and the teacher console (docs/protocol.md).
//
//   const live = createLive({ role: 'teacher', token: () => session.token });
//   live.watch(boardId, version);          // teacher: follow a board (before or after start)
//   live.on('state', ({ board, state }) => …);
//   live.start();
//   await live.send(boardId, 'next');      // resolves with the ack {id, board, version}
//
// Methods
//   start() / stop()            connect (and keep reconnecting) / disconnect for good
//   on(type, fn) → off()        subscribe to an event (list below)
//   send(board, op, args)       teacher command → Promise<ack> (its `id` property is the
//                               command id); rejects with a LiveError if refused
//   message(msg) → bool         any other client message (rendered, code); false when offline
//   watch(board, version?) / unwatch(board)   teacher: the boards to follow
//   serverNow()                 the server's clock, estimated from ping/pong
//   state(board), version(board)  latest state / its version (decimal string) per board
//   transport                   'connecting' | 'websocket' | 'fallback' | 'offline'
//                               (moving away from a restarting server is 'connecting', never
//                               'offline', while another host or the same one comes back)
//   host                        the API host in use ("" = this page's origin)
//   pending                     unacknowledged commands, oldest first
//
// Events
//   status   {transport, host}      the transport changed
//   welcome  welcome message        (after every (re)connect)
//   state    {board, state}         only states newer than the one we had
//   ack      ack message            a command of ours is durable
//   failed   {command, error}       the server refused a command of ours
//   pending  {pending}              the list of unacknowledged commands changed
//   board / pairing / error         the server messages of those types
//   unauthorized {code}             the token was refused or the session ended (401 / close 4401, 4403): we stopped
//   outdated                        the server no longer speaks our protocol (4409)
//
// Versions are hybrid-clock numbers the server keeps below 2^53: plain JavaScript numbers.
// Drawing a board state is slides.js's.

import { apiConfig, backoffDelay, hostFailed, hostInUse, hostWorks } from './api.js';

export const PROTOCOL = 1;
const PING_EVERY_MS = 30000;
const SILENCE_PROBE_MS = 20000; // the browser never sees WebSocket ping frames: ask ourselves
const SILENCE_LIMIT_MS = 35000;
const WS_RETRY_MS = 3 * 60 * 1000; // on the fallback, how often to try the WebSocket again
// Event streams are reopened now and then: a stream held open by a draining server or a
// buffering proxy can look alive (heartbeats) while states stop coming.
const STREAM_MAX_AGE_MS = 5 * 60 * 1000;
const QUIET_RECONNECTS = ['recycle', 'rewatch']; // planned: no "connecting" in between
const OFFSET_SAMPLES = 5;
// An acked change whose state has not arrived after this long means the stream is stale
// (a draining server, a proxy that buffers the event stream): open a new one.
const STATE_AFTER_ACK_MS = 10000;
const PENDING_KEY = 'classcast.live.pending';
// A server restarting says so (close 1012, 1001 from releases before it, or `restart` on the
// event stream): the client moves to another host at once. Where no other host answers (a
// single server), it keeps trying the hosts every RESTART_RETRY_MS, jittered, for as long as
// the request timeout, before it counts as offline: a restart takes a second or two.
const RESTARTING = [1012, 1001, 'restart'];
const RESTART_RETRY_MS = 500;
const RETRY_CODES = ['rate_limited', 'unavailable']; // command errors that are worth a retry

export class LiveError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = 'LiveError';
    this.code = code;
    Object.assign(this, extra);
  }
}

/** -1, 0 or 1, like a sort comparator; missing versions count as 0. */
export function compareVersions(a, b) {
  return Math.sign((Number(a) || 0) - (Number(b) || 0));
}

// ---- small helpers ----------------------------------------------------------------------

/** crypto.randomUUID exists only on https/localhost; school servers often use plain http. */
export function uuid() {
  if (globalThis.crypto?.randomUUID) {
    try {
      return crypto.randomUUID();
    } catch {
      // insecure context: fall through
    }
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** ws(s):// URL of a host's live endpoint; "" is this page's origin. */
export function wsUrl(host) {
  const base = host || location.origin;
  return base.replace(/^http/i, 'ws').replace(/\/+$/, '') + '/ws';
}

// ---- the client -------------------------------------------------------------------------

/**
 * options: role ('teacher' | 'board'); token: () => string (read at every connect, so a
 * renewed session token is picked up).
 */
export function createLive({ role, token }) {
  return new LiveClient(role, token);
}

class LiveClient {
  constructor(role, token) {
    this.role = role;
    this.token = token;
    this.transport = 'connecting';
    this.host = null;
    this.listeners = new Map();
    this.states = new Map(); // board -> state
    this.versions = new Map(); // board -> version string (watched boards; 0 = none yet)
    this.waiters = new Map(); // command id -> {resolve, reject}
    this.pendingMap = new Map(this.loadPending().map((c) => [c.id, c]));
    this.awaiting = new Map(); // board -> {version, at}: acked, state not seen yet
    this.offsets = []; // [{rtt, offset}]
    this.offset = 0;
    this.active = null; // the connection in use
    this.stopped = true;
    this.wsBlocked = false; // the WebSocket failed where the fallback worked
    this.restartUntil = 0; // until when a restarting server is waited for (see RESTARTING)
  }

  // -- public API --

  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.wake = null;
    this.run().catch((err) => console.error('live:', err));
  }

  stop() {
    this.stopped = true;
    this.active?.close('stop');
    this.wake?.();
  }

  get pending() {
    return [...this.pendingMap.values()];
  }

  serverNow() {
    return Date.now() + this.offset;
  }

  state(board) {
    return this.states.get(board) ?? null;
  }

  version(board) {
    return this.versions.get(board) ?? '0';
  }

  watch(board, version) {
    if (this.versions.has(board)) return;
    this.versions.set(board, version != null ? String(version) : '0');
    if (this.active?.kind === 'websocket') {
      this.active.send({ type: 'watch', boards: [{ board, version: Number(this.version(board)) }] });
    } else if (this.active?.kind === 'fallback') {
      // The event stream names its boards when it opens: open it again with this one.
      this.active.close('rewatch');
    }
  }

  /** Whether a command was acknowledged whose state has not reached this client yet. */
  behind(board) {
    return this.awaiting.has(board);
  }

  /** Stop following a board (e.g. unpaired). The server may still send its states; they are dropped. */
  unwatch(board) {
    this.versions.delete(board);
    this.states.delete(board);
    this.awaiting.delete(board);
  }

  /**
   * Send a command; it is kept (also across reloads) and resent until it is acked. `replaces`:
   * the id of a pending command this one makes pointless (an earlier `goto` of a series): it
   * is no longer resent, and its waiter rejects with `replaced`.
   */
  send(board, op, args = {}, replaces = null) {
    const command = { type: 'command', id: uuid(), board, op, args };
    if (replaces && this.pendingMap.has(replaces)) this.settle(replaces, false, { code: 'replaced' });
    this.pendingMap.set(command.id, command);
    this.savePending();
    const promise = new Promise((resolve, reject) => this.waiters.set(command.id, { resolve, reject }));
    promise.id = command.id; // lets the caller match later `ack` / `failed` events
    if (this.active) this.deliver(this.active, command);
    return promise;
  }

  /** Send a client message that is not a command. Not queued: false when not connected. */
  message(msg) {
    if (!this.active) return false;
    if (this.active.kind === 'fallback' && msg.type === 'code') return false; // use POST /api/boards/code
    this.active.send(msg);
    return true;
  }

  // -- events --

  emit(type, detail) {
    for (const fn of this.listeners.get(type) ?? []) {
      try {
        fn(detail);
      } catch (err) {
        console.error('live listener', type, err); // one broken listener must not stop the others
      }
    }
  }

  setTransport(transport, host = this.host) {
    if (transport === this.transport && host === this.host) return;
    this.transport = transport;
    this.host = host;
    this.emit('status', { transport, host });
  }

  // -- pending commands (sessionStorage, so a reload of the console keeps them) --

  loadPending() {
    if (this.role !== 'teacher') return [];
    try {
      const list = JSON.parse(sessionStorage.getItem(PENDING_KEY) || '[]');
      return Array.isArray(list) ? list.filter((c) => c && c.id && c.board && c.op) : [];
    } catch {
      return [];
    }
  }

  savePending() {
    try {
      if (this.pendingMap.size) sessionStorage.setItem(PENDING_KEY, JSON.stringify(this.pending));
      else sessionStorage.removeItem(PENDING_KEY);
    } catch {
      // storage full or blocked: the commands still live in memory
    }
    this.emit('pending', { pending: this.pending });
  }

  settle(id, ok, value) {
    const command = this.pendingMap.get(id);
    if (!command) return null; // e.g. a second ack for a resent command
    this.pendingMap.delete(id);
    this.savePending();
    const waiter = this.waiters.get(id);
    this.waiters.delete(id);
    if (ok) waiter?.resolve(value);
    else waiter?.reject(value);
    return command;
  }

  // -- incoming messages --

  handle(conn, msg) {
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'welcome':
        if (typeof msg.server_time === 'number' && !this.offsets.length) {
          this.offset = msg.server_time - Date.now(); // rough until the first pong
        }
        break;
      case 'state': {
        const state = msg.state;
        const board = msg.board ?? state?.board;
        if (!state || !board) return;
        if (this.role === 'teacher' && !this.versions.has(board)) return; // unwatched
        if (this.states.has(board) && compareVersions(state.version, this.version(board)) <= 0) return;
        this.versions.set(board, String(state.version));
        this.states.set(board, state);
        if (compareVersions(state.version, this.awaiting.get(board)?.version) >= 0) this.awaiting.delete(board);
        this.emit('state', { board, state });
        return;
      }
      case 'ack':
        if (this.settle(msg.id, true, msg)) {
          if (this.versions.has(msg.board) && compareVersions(msg.version, this.version(msg.board)) > 0) {
            this.awaiting.set(msg.board, { version: String(msg.version), at: Date.now() });
          }
          this.emit('ack', msg);
        }
        return;
      case 'restart':
        // The event stream's server is restarting and ends the stream next: go now.
        conn.close('restart');
        return;
      case 'unfollowed':
        // The board was unpaired from this account: the server sends nothing more of it.
        this.unwatch(msg.board);
        break;
      case 'pong':
        this.addOffsetSample(msg.t0, msg.server_time, Date.now());
        conn.pingOut = false;
        return;
      case 'error':
        if (msg.id && this.pendingMap.has(msg.id)) {
          if (RETRY_CODES.includes(msg.code)) {
            // Not refused for good (too fast, database briefly away): the same command again soon.
            setTimeout(() => this.active && this.pendingMap.has(msg.id) && this.deliver(this.active, this.pendingMap.get(msg.id)), 2000);
            return;
          }
          const command = this.settle(msg.id, false, new LiveError(msg.code, msg.message, { id: msg.id }));
          this.emit('failed', { command, error: msg });
          return;
        }
        break;
      default:
        break;
    }
    this.emit(msg.type, msg);
  }

  addOffsetSample(t0, serverTime, now) {
    if (typeof t0 !== 'number' || typeof serverTime !== 'number') return;
    const rtt = now - t0;
    if (rtt < 0 || rtt > 60000) return;
    this.offsets.push({ rtt, offset: serverTime - (t0 + now) / 2 });
    if (this.offsets.length > OFFSET_SAMPLES) this.offsets.shift();
    // The quickest round trip has the least room for asymmetry, so trust it most.
    this.offset = this.offsets.reduce((best, s) => (s.rtt < best.rtt ? s : best)).offset;
  }

  // -- connection loop --

  async run() {
    const cfg = await apiConfig();
    this.hosts = cfg.hosts.length ? cfg.hosts : [''];
    this.timeoutMs = cfg.timeoutMs;
    let attempt = 0;
    let conn = null;
    while (!this.stopped) {
      if (!conn) {
        conn = await this.connectRound();
        if (this.stopped) {
          conn?.close('stop');
          break;
        }
        if (conn === 'unauthorized' || conn === 'outdated') return this.giveUp(conn);
        if (!conn) {
          if (Date.now() < this.restartUntil) {
            // The host that restarts may be the only one: it is back in a moment.
            this.setTransport('connecting', null);
            await this.sleep(RESTART_RETRY_MS * (0.5 + Math.random()));
            continue;
          }
          this.setTransport('offline', null);
          await this.sleep(backoffDelay(attempt++));
          continue;
        }
      }
      const startedAt = Date.now();
      const host = conn.host;
      const end = await this.use(conn);
      if (end.fatal) return this.giveUp(end.fatal);
      conn = end.next ?? null;
      if (conn || this.stopped || QUIET_RECONNECTS.includes(end.code)) continue; // planned: straight on
      this.setTransport('connecting');
      if (RESTARTING.includes(end.code)) {
        // That server is going away: another host now, no backoff (unacknowledged commands
        // are resent there). It is tried last, being the only one left if no other answers.
        hostFailed(host);
        this.restartUntil = Date.now() + this.timeoutMs;
        attempt = 0;
        continue;
      }
      // A server that keeps closing us right after welcome (4400, 4429…) gets backoff too.
      if (Date.now() - startedAt < 10000) await this.sleep(backoffDelay(attempt++));
      else attempt = 0;
    }
    this.active = null;
  }

  giveUp(reason) {
    this.stopped = true;
    this.active = null;
    this.setTransport('offline', null);
    if (reason === 'outdated') this.emit('outdated');
    else this.emit('unauthorized', { code: 4401 });
  }

  /** Interruptible sleep (stop() wakes it up). */
  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /**
   * One round: every host at most once over the WebSocket (unless it is known to be blocked),
   * then every host over the fallback. Starts with the host in use and stays on the first
   * that works, so a device never hops between hosts that are all fine.
   */
  async connectRound() {
    const n = this.hosts.length;
    const attempt = async (open) => {
      for (let i = 0; i < n && !this.stopped; i++) {
        const host = hostInUse();
        const result = await open(host);
        if (result.conn) hostWorks(host);
        if (result.conn || result.fatal) return result;
        hostFailed(host);
      }
      return {};
    };
    if (!this.wsBlocked) {
      const result = await attempt((host) => this.openSocket(host));
      if (result.conn || result.fatal) return result.conn ?? result.fatal;
    }
    const result = await attempt((host) => this.openStream(host));
    // The server is there, the WebSocket is not: skip it until a retry works.
    if (result.conn) this.wsBlocked = true;
    return result.conn ?? result.fatal ?? null;
  }

  helloFields() {
    if (this.role === 'teacher') {
      return { boards: [...this.versions].map(([board, version]) => ({ board, version: Number(version) })) };
    }
    const [only] = this.versions.values();
    return { version: Number(only ?? 0) };
  }

  /** Runs a connection until it ends; resolves with {code, fatal?, next?}. */
  use(conn) {
    this.active = conn;
    this.setTransport(conn.kind, conn.host);
    conn.lastHeard = Date.now();
    // Messages that came in with the welcome waited until now, so listeners that answer
    // (e.g. the board's `rendered`) find this connection active.
    conn.ready = true;
    this.handle(conn, conn.welcome);
    for (const msg of conn.backlog.splice(0)) this.handle(conn, msg);
    this.ping(conn);
    for (const command of this.pending) this.deliver(conn, command);

    const pinger = setInterval(() => this.ping(conn), PING_EVERY_MS);
    const watchdog = setInterval(() => {
      const silent = Date.now() - conn.lastHeard;
      const stale = [...this.awaiting.values()].some((a) => Date.now() - a.at > STATE_AFTER_ACK_MS);
      if (silent > SILENCE_LIMIT_MS || stale) {
        this.awaiting.clear();
        conn.close(stale ? 'stale' : 'silent');
      } else if (conn.kind === 'websocket' && silent > SILENCE_PROBE_MS && !conn.pingOut) this.ping(conn);
    }, 5000);
    let upgrader = null;
    let recycler = null;
    if (conn.kind === 'fallback') {
      recycler = setTimeout(() => conn.close('recycle'), STREAM_MAX_AGE_MS * (0.8 + Math.random() * 0.4));
      // Keep trying the WebSocket now and then; switch to it as soon as it works.
      upgrader = setInterval(async () => {
        if (conn.upgrading) return;
        conn.upgrading = true;
        const result = await this.openSocket(conn.host);
        conn.upgrading = false;
        if (result.conn && this.active === conn && !conn.ended) {
          this.wsBlocked = false;
          conn.close('upgrade', result.conn);
        } else {
          result.conn?.close('stop');
        }
      }, WS_RETRY_MS);
    }
    return conn.closed.then((end) => {
      clearInterval(pinger);
      clearInterval(watchdog);
      clearInterval(upgrader);
      clearTimeout(recycler);
      if (this.active === conn) this.active = null;
      return end;
    });
  }

  ping(conn) {
    if (conn.ended) return;
    const t0 = Date.now();
    if (conn.kind === 'websocket') {
      conn.pingOut = true;
      conn.send({ type: 'ping', t0 });
      return;
    }
    // Fallback: a plain GET gives the same estimate.
    fetch(conn.host + '/api/live/time', { cache: 'no-store', credentials: 'omit' })
      .then((res) => (res.ok ? res.json() : null))
      .then((body) => body && this.addOffsetSample(t0, body.server_time, Date.now()))
      .catch(() => {});
  }

  /** A message from a connection: handled once the connection is in use, else kept. */
  receive(conn, msg) {
    if (conn.ended) return;
    if (conn.ready) this.handle(conn, msg);
    else conn.backlog.push(msg);
  }

  deliver(conn, command) {
    // The newest version of the board this page saw or was acknowledged: a server that has
    // not received it yet (another database of a cluster) waits for it rather than apply the
    // command to an older state.
    const acked = this.awaiting.get(command.board)?.version;
    const seen = compareVersions(acked, this.version(command.board)) > 0 ? acked : this.version(command.board);
    const message = { ...command, seen: Number(seen) };
    if (conn.kind === 'websocket') conn.send(message);
    else conn.post(message);
  }

  // -- WebSocket transport --

  /** Opens /ws on a host and says hello; resolves once welcomed ({conn}) or failed. */
  openSocket(host) {
    return new Promise((resolve) => {
      let ws;
      try {
        ws = new WebSocket(wsUrl(host));
      } catch {
        resolve({}); // e.g. blocked by the page's policy
        return;
      }
      let welcomed = false;
      let abandoned = false; // timed out: whatever this socket says later is ignored
      let endConn;
      const conn = {
        kind: 'websocket',
        host,
        ended: false,
        ready: false,
        backlog: [],
        closed: new Promise((r) => (endConn = r)),
        send: (msg) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
        },
        close: (reason, next) => {
          if (conn.ended) return;
          conn.ended = true;
          try {
            ws.close(1000);
          } catch {
            // already closing
          }
          endConn({ code: reason, next });
        },
      };
      const timer = setTimeout(() => {
        abandoned = true;
        try {
          ws.close();
        } catch {
          // ignore
        }
        finish({});
      }, this.timeoutMs);
      const finish = (result) => {
        clearTimeout(timer);
        resolve(result);
      };

      ws.onopen = () => {
        // The token travels only inside the first message, never in the URL.
        ws.send(JSON.stringify({ type: 'hello', protocol: PROTOCOL, role: this.role, token: this.token(), ...this.helloFields() }));
      };
      ws.onmessage = (event) => {
        if (abandoned) return;
        conn.lastHeard = Date.now();
        let msg;
        try {
          msg = JSON.parse(String(event.data));
        } catch {
          return;
        }
        if (!welcomed) {
          if (msg.type !== 'welcome') return; // nothing else comes before welcome
          welcomed = true;
          conn.welcome = msg;
          finish({ conn });
          return;
        }
        this.receive(conn, msg);
      };
      ws.onclose = (event) => {
        if (abandoned) return;
        // 4401: the token was refused; 4403: the session ended while connected (signed out,
        // password changed, account disabled).
        const fatal = [4401, 4403].includes(event.code) ? 'unauthorized' : event.code === 4409 ? 'outdated' : null;
        if (!welcomed) {
          finish({ fatal });
          return;
        }
        if (!conn.ended) {
          conn.ended = true;
          endConn({ code: event.code, fatal });
        }
      };
      ws.onerror = () => {}; // onclose follows and tells the rest
    });
  }

  // -- fallback transport: SSE over fetch + POST --

  /** Opens the event stream on a host; resolves once its welcome arrives ({conn}) or failed. */
  openStream(host) {
    return new Promise((resolve) => {
      const controller = new AbortController();
      let welcomed = false;
      let endConn;
      const conn = {
        kind: 'fallback',
        host,
        ended: false,
        ready: false,
        backlog: [],
        closed: new Promise((r) => (endConn = r)),
        send: (msg) => this.post(conn, msg),
        post: (msg) => this.post(conn, msg),
        close: (reason, next, fatal) => {
          if (conn.ended) return;
          conn.ended = true;
          controller.abort();
          endConn({ code: reason, next, fatal });
        },
      };
      const timer = setTimeout(() => {
        controller.abort();
        finish({});
      }, this.timeoutMs);
      const finish = (result) => {
        clearTimeout(timer);
        resolve(result);
      };

      const params = new URLSearchParams({ role: this.role });
      if (this.role === 'teacher') {
        params.set('boards', [...this.versions].map(([b, v]) => `${b}:${v}`).join(','));
      } else {
        params.set('version', [...this.versions.values()][0] ?? '0');
      }
      fetch(host + '/api/live/events?' + params, {
        headers: { Authorization: 'Bearer ' + this.token(), Accept: 'text/event-stream' },
        cache: 'no-store',
        credentials: 'omit',
        signal: controller.signal,
      })
        .then(async (res) => {
          if (res.status === 401) return finish({ fatal: 'unauthorized' });
          if (!res.ok || !res.body) return finish({});
          await readEvents(res.body, {
            heard: () => (conn.lastHeard = Date.now()),
            message: (data) => {
              let msg;
              try {
                msg = JSON.parse(data);
              } catch {
                return;
              }
              if (!welcomed) {
                if (msg.type !== 'welcome') return;
                welcomed = true;
                conn.welcome = msg;
                finish({ conn });
                return;
              }
              this.receive(conn, msg);
            },
          });
          throw new Error('stream ended');
        })
        .catch(() => {
          if (!welcomed) finish({});
          else if (!conn.ended) {
            conn.ended = true;
            endConn({ code: 'stream' });
          }
        });
    });
  }

  /** POST one client message; a command's answer (ack or error) is handled like a pushed one. */
  async post(conn, msg) {
    if (msg.type === 'command') {
      if (conn.inFlight?.has(msg.id)) return;
      (conn.inFlight ??= new Set()).add(msg.id);
      // One at a time, in order: the next command must not overtake this one.
      conn.queue = (conn.queue ?? Promise.resolve()).then(() => this.postOnce(conn, msg));
      await conn.queue;
      conn.inFlight.delete(msg.id);
      return;
    }
    await this.postOnce(conn, msg);
  }

  async postOnce(conn, msg) {
    if (conn.ended) return;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      const res = await fetch(conn.host + '/api/live/messages', {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + this.token(), 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(msg),
        cache: 'no-store',
        credentials: 'omit',
        signal: controller.signal,
      });
      const text = await res.text();
      if (res.status === 401) return conn.close('unauthorized', null, 'unauthorized');
      if (res.status >= 500) throw new Error('server error ' + res.status);
      if (!text || msg.type !== 'command') return;
      // Every answer is a protocol message: `ack`, or `error` with the command's id.
      const body = JSON.parse(text);
      if (body?.type) this.handle(conn, body);
    } catch {
      // Not delivered (network, timeout, 5xx). The command stays pending: try it again
      // shortly on this connection; a reconnect resends it anyway.
      if (msg.type === 'command') {
        setTimeout(() => {
          if (!conn.ended && this.pendingMap.has(msg.id)) this.post(conn, msg);
        }, 3000);
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Reads a Server-Sent Events body; calls message(data) per event and heard() per chunk. */
async function readEvents(body, { heard, message }) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    heard(); // any bytes, heartbeat comments included, prove the stream is alive
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop(); // an incomplete last line waits for the next chunk
    for (const line of lines) {
      if (line === '') {
        if (data.length) message(data.join('\n'));
        data = [];
      } else if (line.startsWith(':')) {
        // heartbeat comment
      } else if (line.startsWith('data:')) {
        data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
      }
      // event:, id:, retry: are not used by this protocol
    }
  }
}

// ---- showing a board state (board page and console preview) -----------------------------
