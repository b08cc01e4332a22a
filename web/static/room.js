'use strict';

// Room page: load the match for the id in the URL (/match/{id}), show the
// players and the interview question, and run the session: ready check,
// countdown, chat, leaving and feedback.
(function () {
  const $ = (id) => document.getElementById(id);

  function stored(key) {
    try { return sessionStorage.getItem(key); } catch (_) { return null; }
  }

  const token = stored('matchd_token');
  const me = stored('matchd_user');

  function done(state) {
    document.body.dataset.state = state;
    $('room').removeAttribute('aria-busy');
    $('loading').hidden = true;
  }

  function fail(message, linkText) {
    $('error').textContent = message;
    $('error-link').textContent = linkText || 'Back to lobby';
    $('room-error').hidden = false;
    document.title = 'Room unavailable — matchd';
    done('error');
  }

  function matchIdFromPath() {
    try {
      return decodeURIComponent(location.pathname.split('/')[2] || '');
    } catch (_) {
      return ''; // malformed %-escape
    }
  }

  function playerItem(name, role, isYou, isPartner) {
    const li = document.createElement('li');
    li.className = 'player' + (isYou ? ' is-you' : '');

    const avatar = document.createElement('span');
    avatar.className = 'avatar';
    avatar.setAttribute('aria-hidden', 'true');
    avatar.textContent = name.charAt(0) || '?';

    const text = document.createElement('span');
    text.className = 'player-text';
    const nameEl = document.createElement('span');
    nameEl.className = 'player-name';
    nameEl.textContent = name;
    if (isPartner) nameEl.id = 'partner';
    const roleEl = document.createElement('span');
    roleEl.className = 'player-role';
    roleEl.textContent = role;
    text.append(nameEl, roleEl);

    li.append(avatar, text);
    return li;
  }

  function render(room) {
    const p1 = String(room.player1 || '');
    const p2 = String(room.player2 || '');
    const players = $('players');
    players.textContent = '';
    if (me && (me === p1 || me === p2)) {
      const partner = me === p1 ? p2 : p1;
      players.append(playerItem(me, 'You', true, false), playerItem(partner, 'Partner', false, true));
      document.title = `Mock interview with ${partner} — matchd`;
    } else {
      // Signed in by cookie only, so we can't tell which player we are.
      players.append(playerItem(p1, 'Player 1', false, false), playerItem(p2, 'Player 2', false, false));
    }

    $('question').textContent = room.question_text || 'No question was assigned.';
    $('topic').textContent = room.topic || '';
    const difficulty = String(room.difficulty || '');
    const diffEl = $('difficulty');
    diffEl.textContent = difficulty;
    // Only known values become class names; the text itself is never trusted as markup.
    if (['easy', 'medium', 'hard'].includes(difficulty)) diffEl.classList.add('difficulty-' + difficulty);
    $('duration').textContent = room.duration_minutes ? `${room.duration_minutes} min suggested` : '';

    $('match-id').textContent = room.match_id || '';
    const created = new Date(room.created_at);
    const createdEl = $('created');
    if (isNaN(created.getTime())) {
      createdEl.textContent = 'unknown';
    } else {
      createdEl.dateTime = created.toISOString();
      createdEl.textContent = created.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    }

    $('room-content').hidden = false;
    done('loaded');
    session.start(room);
  }

  // The session: a WebSocket for the ready check, the timer, chat,
  // presence and leaving; REST for feedback. The server sends
  // match_found and room_state when the socket opens while we hold the
  // room, then room events as they happen.
  const session = (function () {
    const MAX_BACKOFF_MS = 10000;
    let ws = null;
    let room = null;
    let status = '';
    let deadline = 0; // ms epoch the countdown counts to; 0 = none
    let tick = null;
    let backoff = 0;
    let ended = false; // no reconnects once the session is over for us

    function setStatus(s, text) {
      status = s;
      document.body.dataset.session = s;
      $('session-status').textContent = text;
      const live = s === 'waiting' || s === 'active';
      $('leave').hidden = !live;
      $('chat').hidden = !live;
      if (!live) $('ready').hidden = true;
      if (s === 'completed') showFeedback();
      if (!live) {
        deadline = 0;
        $('countdown-line').hidden = true;
      }
    }

    function notice(text) {
      $('notice').textContent = text;
      $('notice').hidden = !text;
    }

    function countTo(ms, label) {
      deadline = ms;
      $('countdown-label').textContent = label;
      $('countdown-line').hidden = false;
      clearInterval(tick);
      renderCountdown();
      tick = setInterval(renderCountdown, 500);
    }

    function renderCountdown() {
      if (!deadline) {
        clearInterval(tick);
        return;
      }
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      const m = Math.floor(left / 60);
      const sec = String(left % 60).padStart(2, '0');
      $('countdown').textContent = `${m}:${sec}`;
    }

    function applyState(st) {
      const secs = typeof st.seconds_left === 'number' ? st.seconds_left : null;
      switch (st.status) {
        case 'waiting':
          setStatus('waiting', st.you_ready
            ? (st.partner_ready ? 'Both ready — starting…' : 'You are ready. Waiting for your partner…')
            : (st.partner_ready ? 'Your partner is ready — say you are ready to start.' : 'Say you are ready to start the interview.'));
          $('ready').hidden = !!st.you_ready;
          if (secs !== null) countTo(Date.now() + secs * 1000, 'Ready check closes in');
          break;
        case 'active':
          setStatus('active', 'The interview is on.');
          $('ready').hidden = true;
          if (secs !== null) countTo(Date.now() + secs * 1000, 'Time left');
          break;
        case 'completed':
          ended = true;
          setStatus('completed', st.reason === 'left' ? 'The session ended early.' : 'Time is up — the session is over.');
          break;
        case 'abandoned':
          ended = true;
          setStatus('abandoned', 'This session did not take place.');
          break;
        default:
          break;
      }
    }

    function addChat(from, text, mine) {
      const li = document.createElement('li');
      if (mine) li.className = 'mine';
      const who = document.createElement('span');
      who.className = 'from';
      who.textContent = mine ? 'You' : from;
      const body = document.createElement('span');
      body.textContent = text;
      li.append(who, body);
      $('chat-log').append(li);
      $('chat-log').scrollTop = $('chat-log').scrollHeight;
    }

    function handle(msg) {
      if (msg.match_id && room && msg.match_id !== room.match_id) {
        // A new match (e.g. after a requeue): go to its room.
        if (msg.type === 'match_found') location.href = '/match/' + encodeURIComponent(msg.match_id);
        return;
      }
      switch (msg.type) {
        case 'room_state':
          applyState(msg);
          break;
        case 'room_started':
          setStatus('active', 'The interview is on.');
          notice('');
          $('ready').hidden = true;
          // The session lasts the room's duration from now; ends_at is the
          // server's clock, which ours may not agree with.
          if (room.duration_minutes > 0) countTo(Date.now() + room.duration_minutes * 60000, 'Time left');
          else if (msg.ends_at) countTo(Date.parse(msg.ends_at), 'Time left');
          break;
        case 'time_warning': {
          const mins = Math.round(msg.seconds_left / 60);
          notice(mins >= 2 ? `${mins} minutes left.` : 'One minute left.');
          countTo(Date.now() + msg.seconds_left * 1000, 'Time left');
          break;
        }
        case 'time_up':
          ended = true;
          notice('');
          setStatus('completed', 'Time is up — the session is over.');
          break;
        case 'partner_left':
          ended = true;
          notice('Your partner left the room.');
          setStatus(status === 'active' ? 'completed' : 'abandoned', 'The session ended: your partner left.');
          break;
        case 'requeued':
          ended = true;
          setStatus('abandoned', 'Your partner did not show up.');
          notice('You are back in the queue at your place, ahead of later joiners. This page moves to your next room when you are matched.');
          break;
        case 'match_cancelled':
          ended = true;
          setStatus('abandoned', msg.reason === 'not_ready'
            ? 'The match was cancelled: not both players were ready in time.'
            : 'The match was cancelled.');
          break;
        case 'chat':
          addChat(msg.from || 'Partner', String(msg.text || ''), false);
          break;
        case 'partner_connected':
          $('presence').textContent = 'Partner online';
          break;
        case 'partner_disconnected':
          $('presence').textContent = 'Partner offline';
          break;
        case 'error':
          $('chat-error').textContent = msg.message || msg.code || 'Something went wrong.';
          $('chat-error').hidden = false;
          break;
        default:
          break; // match_found for this room, pong
      }
    }

    function send(obj) {
      if (!ws || ws.readyState !== WebSocket.OPEN) return false;
      ws.send(JSON.stringify(obj));
      return true;
    }

    function connect() {
      const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
      const sock = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token || '')}`);
      ws = sock;
      sock.onopen = () => { backoff = 0; };
      sock.onmessage = (ev) => {
        let msg;
        try { msg = JSON.parse(ev.data); } catch (_) { return; }
        if (msg && typeof msg.type === 'string') handle(msg);
      };
      sock.onclose = () => {
        if (ws !== sock) return;
        ws = null;
        if (ended && status !== 'abandoned') return;
        const delay = Math.min(1000 * 2 ** backoff, MAX_BACKOFF_MS);
        backoff++;
        setTimeout(connect, delay);
      };
    }

    function showFeedback() {
      if (!me || !room || (me !== room.player1 && me !== room.player2)) return;
      $('feedback').hidden = false;
    }

    async function submitFeedback(ev) {
      ev.preventDefault();
      const picked = document.querySelector('#feedback input[name="rating"]:checked');
      const result = $('feedback-result');
      if (!picked) {
        result.textContent = 'Pick a rating from 1 to 5.';
        return;
      }
      $('feedback-submit').disabled = true;
      const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
      if (token) headers.Authorization = 'Bearer ' + token;
      let res;
      let body = null;
      try {
        res = await fetch('/api/matches/' + encodeURIComponent(room.match_id) + '/feedback', {
          method: 'POST', headers, credentials: 'same-origin',
          body: JSON.stringify({ rating: Number(picked.value), notes: $('notes').value }),
        });
        body = await res.json().catch(() => null);
      } catch (_) {
        result.textContent = 'Could not reach the server. Please try again.';
        $('feedback-submit').disabled = false;
        return;
      }
      if (res.ok || res.status === 409) {
        result.textContent = res.ok ? 'Thanks for your feedback!' : 'You have already rated this session.';
        document.body.dataset.feedback = 'sent';
      } else {
        result.textContent = (body && body.error && body.error.message) || `Something went wrong (HTTP ${res.status}).`;
        $('feedback-submit').disabled = false;
      }
    }

    function start(r) {
      room = r;
      if (!me || (me !== r.player1 && me !== r.player2)) {
        // Signed in by cookie only: the room is shown, the session is not ours to drive.
        $('session').hidden = true;
        return;
      }
      $('ready').addEventListener('click', () => {
        if (send({ type: 'ready', match_id: room.match_id })) $('ready').hidden = true;
      });
      $('leave').addEventListener('click', () => {
        send({ type: 'leave_room', match_id: room.match_id });
      });
      $('chat-form').addEventListener('submit', (ev) => {
        ev.preventDefault();
        const input = $('chat-text');
        const text = input.value.trim();
        if (!text) return;
        $('chat-error').hidden = true;
        if (send({ type: 'chat', match_id: room.match_id, text })) {
          addChat(me, text, true);
          input.value = '';
        }
      });
      $('feedback').addEventListener('submit', submitFeedback);
      // Until the socket says otherwise, the room's own status.
      if (r.status === 'completed' || r.status === 'abandoned') {
        ended = true;
        setStatus(r.status, r.status === 'completed' ? 'The session is over.' : 'This session did not take place.');
      } else {
        setStatus(r.status, r.status === 'waiting' ? 'Say you are ready to start the interview.' : 'The interview is on.');
        $('ready').hidden = r.status !== 'waiting';
      }
      connect();
    }

    return { start };
  })();

  async function load() {
    const id = matchIdFromPath();
    if (!id) {
      fail('No such match');
      return;
    }
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;

    let res;
    let body = null;
    try {
      res = await fetch('/api/matches/' + encodeURIComponent(id), { headers, credentials: 'same-origin' });
      body = await res.json().catch(() => null);
    } catch (_) {
      fail('Could not reach the server. Please reload to try again.');
      return;
    }

    if (res.status === 401) fail('Please join from the lobby first', 'Go to the lobby');
    else if (res.status === 403) fail('This room belongs to other players');
    else if (res.status === 404) fail('No such match');
    else if (!res.ok || !body) fail((body && body.error && body.error.message) || `Something went wrong (HTTP ${res.status}).`);
    else render(body);
  }

  load();
})();
