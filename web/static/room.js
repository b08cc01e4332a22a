'use strict';

// Room page: load the match for the id in the URL (/match/{id}) and show
// the players and the interview question.
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
  }

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
