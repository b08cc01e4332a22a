'use strict';

// Lobby: sign in (dev login), join the matchmaking queue over a WebSocket,
// and go to the room page as soon as the server pairs us with someone.
(function () {
  const TOKEN_KEY = 'matchd_token';
  const USER_KEY = 'matchd_user';
  const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
  const PING_MS = 20000;
  const POLL_MS = 5000;
  const MAX_BACKOFF_MS = 10000;
  const MAX_FAILED_CONNECTS = 6; // consecutive attempts that never opened before we give up

  const $ = (id) => document.getElementById(id);
  const form = $('join-form');
  const nameInput = $('name');
  const joinBtn = $('join');
  const errorEl = $('error');
  const waitingEl = $('waiting');
  const statusEl = $('status');
  const queueSizeEl = $('queue-size');
  const waitEl = $('wait');
  const leaveBtn = $('leave');

  // sessionStorage can throw (e.g. storage disabled); the lobby still works without it.
  const storage = {
    get(key) { try { return sessionStorage.getItem(key); } catch (_) { return null; } },
    set(key, value) { try { sessionStorage.setItem(key, value); } catch (_) { /* ignore */ } },
  };

  let token = storage.get(TOKEN_KEY);
  let ws = null;           // the current socket; handlers of stale sockets ignore themselves
  let wantQueue = false;   // the user wants to be queued; drives reconnects
  let everOpened = false;  // whether any socket opened since the user pressed "Find a partner"
  let backoff = 0;         // reconnect attempt counter for exponential backoff
  let failedConnects = 0;  // consecutive attempts that closed without ever opening
  let reconnectTimer = 0;
  let joinRetryTimer = 0;  // re-sends join_queue after an "unavailable" error
  let joinRetries = 0;
  let pingTimer = 0;
  let pollTimer = 0;
  let leaveTimer = 0;

  function showError(message) {
    errorEl.textContent = message || '';
    errorEl.hidden = !message;
  }

  function errorMessage(body, fallback) {
    return (body && body.error && body.error.message) || fallback;
  }

  function authHeaders() {
    return token ? { Authorization: 'Bearer ' + token } : {};
  }

  function setState(state) {
    document.body.dataset.state = state;
    form.hidden = state !== 'form';
    waitingEl.hidden = state === 'form';
    leaveBtn.hidden = state !== 'waiting';
    leaveBtn.disabled = false;
    clearInterval(pollTimer);
    if (state === 'waiting') pollTimer = setInterval(pollQueueStatus, POLL_MS);
  }

  function formatWait(seconds) {
    if (typeof seconds !== 'number' || !isFinite(seconds)) return '';
    const s = Math.max(0, Math.round(seconds));
    if (s === 0) return 'any moment';
    return s < 60 ? `about ${s} s` : `about ${Math.round(s / 60)} min`;
  }

  function showQueueInfo(size, seconds, text) {
    if (typeof size === 'number' && isFinite(size)) queueSizeEl.textContent = String(size);
    const wait = text || formatWait(seconds);
    if (wait) waitEl.textContent = wait;
  }

  // preferences reads the lobby's preference controls: only the fields
  // the player set, so an empty form asks for anyone.
  function preferences() {
    const prefs = {};
    const difficulty = document.getElementById('difficulty').value;
    const duration = document.getElementById('duration').value;
    const language = document.getElementById('language').value.trim();
    const region = document.getElementById('region').value.trim();
    const topics = Array.from(document.querySelectorAll('input[name="topics"]:checked'), (el) => el.value);
    if (difficulty) prefs.difficulty = difficulty;
    if (duration) prefs.duration = Number(duration);
    if (language) prefs.language = language;
    if (region) prefs.region = region;
    if (topics.length) prefs.topics = topics;
    return prefs;
  }
  let joinPrefs = {}; // the preferences of the current join, re-sent on reconnect

  function joinMessage() {
    return Object.keys(joinPrefs).length ? { type: 'join_queue', preferences: joinPrefs } : { type: 'join_queue' };
  }

  async function pollQueueStatus() {
    try {
      const query = new URLSearchParams();
      for (const [k, v] of Object.entries(joinPrefs)) query.set(k, Array.isArray(v) ? v.join(',') : String(v));
      const qs = query.toString();
      const res = await fetch('/api/matchmaking/queue-status' + (qs ? '?' + qs : ''), {
        headers: authHeaders(),
        credentials: 'same-origin',
      });
      if (!res.ok) return;
      const body = await res.json();
      if (document.body.dataset.state !== 'waiting') return;
      showQueueInfo(body.queue_size, body.estimated_wait_seconds, body.estimated_wait_text);
    } catch (_) {
      // Best effort only: the socket's "queued" messages are the source of truth.
    }
  }

  function send(msg) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  // Intentionally drop the current socket. Detaching it first makes its
  // close handler a no-op, so this never triggers a reconnect.
  function closeSocket() {
    const sock = ws;
    ws = null;
    clearInterval(pingTimer);
    if (!sock) return;
    if (sock.readyState === WebSocket.CONNECTING) {
      // Closing while connecting makes browsers log a warning; close once open instead.
      sock.onopen = () => sock.close(1000);
    } else if (sock.readyState === WebSocket.OPEN) {
      sock.close(1000);
    }
  }

  function backToForm(message) {
    wantQueue = false;
    clearTimeout(reconnectTimer);
    clearTimeout(joinRetryTimer);
    clearTimeout(leaveTimer);
    closeSocket();
    setState('form');
    showError(message || '');
    nameInput.focus();
  }

  function scheduleReconnect(delay) {
    if (delay === undefined) {
      delay = Math.min(1000 * 2 ** backoff, MAX_BACKOFF_MS); // 1 s, 2 s, 4 s, 8 s, 10 s…
      backoff++;
    }
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(() => { if (wantQueue) connect(); }, delay);
  }

  function connect() {
    clearTimeout(reconnectTimer);
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const sock = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token || '')}`);
    let opened = false;
    ws = sock;

    sock.onopen = () => {
      if (ws !== sock) return;
      opened = true;
      everOpened = true;
      failedConnects = 0;
      statusEl.textContent = 'Looking for a partner…';
      send(joinMessage()); // idempotent server-side, so safe after a reconnect
      clearInterval(pingTimer);
      pingTimer = setInterval(() => send({ type: 'ping' }), PING_MS);
    };

    sock.onmessage = (ev) => {
      if (ws !== sock) return;
      let msg;
      try { msg = JSON.parse(ev.data); } catch (_) { return; }
      if (!msg || typeof msg.type !== 'string') return;
      backoff = 0; // only a real message proves the connection is healthy
      handleMessage(msg);
    };

    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      clearInterval(pingTimer);
      if (!wantQueue) return;
      if (!opened) {
        failedConnects++;
        // A rejected upgrade (e.g. 401) only shows up as a close without an
        // open. If we never got in, the session is almost certainly bad.
        if (!everOpened || failedConnects >= MAX_FAILED_CONNECTS) {
          backToForm('Could not connect to matchmaking. Please try again.');
          return;
        }
      }
      statusEl.textContent = 'Connection lost — reconnecting…';
      scheduleReconnect();
    };
    // onerror is always followed by onclose, which does the handling.
  }

  function handleMessage(msg) {
    switch (msg.type) {
      case 'queued':
        joinRetries = 0;
        if (wantQueue) showQueueInfo(msg.queue_size, msg.estimated_wait_seconds, msg.estimated_wait_text);
        break;
      case 'left_queue':
        backToForm();
        break;
      case 'match_found':
        onMatch(msg);
        break;
      case 'error':
        if (msg.code === 'unavailable' && wantQueue) {
          // Matchmaking's store is briefly down. The socket stays open;
          // ask again with growing delays until the service answers.
          statusEl.textContent = 'Matchmaking is briefly unavailable — retrying…';
          const delay = Math.min(1000 * 2 ** joinRetries, MAX_BACKOFF_MS);
          joinRetries++;
          clearTimeout(joinRetryTimer);
          joinRetryTimer = setTimeout(() => { if (wantQueue) send(joinMessage()); }, delay);
          break;
        }
        showError(msg.message || msg.code || 'Something went wrong.');
        break;
      case 'reconnect':
        // Server asked us to move (e.g. it is restarting): reconnect shortly and rejoin.
        closeSocket();
        if (wantQueue) {
          statusEl.textContent = 'Reconnecting…';
          scheduleReconnect(500);
        }
        break;
      default:
        // 'pong' and unknown types need no action.
        break;
    }
  }

  function onMatch(msg) {
    if (!msg.match_id) return;
    wantQueue = false;
    clearTimeout(reconnectTimer);
    clearTimeout(leaveTimer);
    clearInterval(pingTimer);
    showError('');
    setState('matched');
    statusEl.textContent = `Matched with ${msg.partner_id || 'a partner'}!`;
    // Brief pause so the message is visible, then go to the room.
    setTimeout(() => {
      location.href = '/match/' + encodeURIComponent(msg.match_id);
    }, 300);
  }

  function startQueue() {
    wantQueue = true;
    everOpened = false;
    backoff = 0;
    failedConnects = 0;
    queueSizeEl.textContent = '—';
    waitEl.textContent = '—';
    statusEl.textContent = 'Looking for a partner…';
    setState('waiting');
    leaveBtn.focus(); // the focused submit button just got hidden
    connect();
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (joinBtn.disabled) return;
    const name = nameInput.value.trim();
    if (!NAME_RE.test(name)) {
      nameInput.setAttribute('aria-invalid', 'true');
      showError('Please enter a name using only letters, digits, _ . - (up to 64 characters).');
      nameInput.focus();
      return;
    }
    nameInput.removeAttribute('aria-invalid');
    for (const id of ['language', 'region']) {
      const el = document.getElementById(id);
      if (el.value.trim() && !new RegExp('^(?:' + el.pattern + ')$').test(el.value.trim())) {
        el.setAttribute('aria-invalid', 'true');
        showError(id === 'language' ? 'Language must be a tag such as "en" or "pt-BR".' : 'Region must be a short name such as "eu-west" (a-z, 0-9 and -).');
        document.getElementById('prefs').open = true;
        el.focus();
        return;
      }
      el.removeAttribute('aria-invalid');
    }
    joinPrefs = preferences();
    showError('');
    joinBtn.disabled = true;
    try {
      const res = await fetch('/api/dev/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        credentials: 'same-origin',
        body: JSON.stringify({ user_id: name }),
      });
      const body = await res.json().catch(() => null);
      if (!res.ok || !body || !body.token) {
        showError(errorMessage(body, `Sign-in failed (HTTP ${res.status}).`));
        return;
      }
      token = body.token;
      storage.set(TOKEN_KEY, token);
      storage.set(USER_KEY, body.user_id || name);
      startQueue();
    } catch (_) {
      showError('Could not reach the server. Please try again.');
    } finally {
      joinBtn.disabled = false;
    }
  });

  nameInput.addEventListener('input', () => nameInput.removeAttribute('aria-invalid'));

  leaveBtn.addEventListener('click', () => {
    leaveBtn.disabled = true;
    if (!send({ type: 'leave_queue' })) {
      backToForm(); // not connected right now: nothing to tell the server
      return;
    }
    wantQueue = false; // don't reconnect if the socket drops while we wait for left_queue
    statusEl.textContent = 'Leaving the queue…';
    leaveTimer = setTimeout(() => backToForm(), 3000); // don't strand the user if no reply comes
  });

  // Coming back via the browser's back/forward cache would otherwise restore
  // the "matched" screen with a dead socket.
  window.addEventListener('pageshow', (ev) => {
    if (ev.persisted) backToForm();
  });

  const savedUser = storage.get(USER_KEY);
  if (token && savedUser) nameInput.value = savedUser;
  setState('form');
})();
