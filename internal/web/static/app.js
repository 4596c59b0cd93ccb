// p2pchat page. Every piece of text that comes from a peer is inserted with
// textContent (through el), never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const PAGE = 50;
const PRIVATE_HISTORY = 200; // lines of history searched for private messages
const state = {
  oldest: 0, more: true, loading: false, ready: false,
  pending: [], historyKeys: new Set(), privateKeys: new Set(), tab: 'public', unread: 0, me: null,
};

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function clock(t) {
  const d = t ? new Date(t) : new Date();
  return d.toLocaleTimeString([], { hour12: false });
}

function lineEl(kind, time, name, text) {
  const li = el('li', 'line ' + kind);
  li.append(el('time', null, clock(time)));
  if (name) li.append(el('span', 'name', '<' + name + '>'));
  li.append(el('span', 'text', text));
  return li;
}

async function api(path, body) {
  const opts = { credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    opts.method = 'POST';
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let data = {};
  try { data = await r.json(); } catch (e) { /* empty body */ }
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function nearBottom(pane) {
  return pane.scrollHeight - pane.scrollTop - pane.clientHeight < 60;
}

function append(list, pane, li) {
  const stick = nearBottom(pane);
  list.append(li);
  if (stick) pane.scrollTop = pane.scrollHeight;
}

function showLocal(kind, text) {
  append($('lines'), $('log'), lineEl(kind, null, null, text));
}

// History: the newest page first, then older pages as the user scrolls up.
async function loadOlder() {
  if (state.loading || !state.more) return;
  state.loading = true;
  const log = $('log');
  try {
    const q = state.oldest ? '?before=' + state.oldest + '&limit=' + PAGE : '?limit=' + PAGE;
    const r = await api('/api/history' + q);
    const first = state.oldest === 0;
    const height = log.scrollHeight, top = log.scrollTop;
    const frag = document.createDocumentFragment();
    for (const l of r.lines) {
      if (first) state.historyKeys.add(l.time + '\n' + l.text);
      const li = lineEl('chat', l.time, l.name, l.text);
      li.dataset.seq = l.seq;
      frag.append(li);
    }
    $('lines').prepend(frag);
    if (r.lines.length) state.oldest = r.lines[0].seq;
    state.more = r.more;
    $('older').textContent = state.more ? 'scroll up for older lines' : 'start of history';
    log.scrollTop = first ? log.scrollHeight : top + (log.scrollHeight - height);
  } catch (e) {
    $('older').textContent = 'history: ' + e.message;
  } finally {
    state.loading = false;
  }
  if (state.more && log.scrollHeight <= log.clientHeight) loadOlder();
}

// privateEl is a private message, live or from the history: a sent one
// says to whom, as the terminal does; clicking a sender's name answers them.
function privateEl(e) {
  const li = lineEl('private', e.time, e.name, e.text);
  if (e.to) {
    li.querySelector('.name').before(el('span', 'to', '[to ' + e.to + '] '));
  } else if (!(state.me && e.name === state.me.name)) {
    const who = li.querySelector('.name');
    who.classList.add('reply');
    who.title = 'Reply to ' + e.name;
    who.addEventListener('click', () => startPrivate(e.name));
  }
  return li;
}

// loadPrivate shows the private messages among the recent history, so the
// private tab holds what was said before the page was opened.
async function loadPrivate() {
  try {
    const r = await api('/api/private?limit=' + PRIVATE_HISTORY);
    state.privateKeys = new Set();
    const frag = document.createDocumentFragment();
    for (const l of r.lines) {
      state.privateKeys.add(l.time + '\n' + l.text);
      frag.append(privateEl(l));
    }
    $('privlines').replaceChildren(frag);
  } catch (e) {
    $('privlines').replaceChildren(lineEl('system', new Date().toISOString(), null, '*** private history: ' + e.message));
  }
}

function onEvent(e) {
  if (!state.ready) { state.pending.push(e); return; }
  switch (e.kind) {
    case 'chat':
      append($('lines'), $('log'), lineEl('chat', e.time, e.name, e.text));
      break;
    case 'private': {
      append($('privlines'), $('privlog'), privateEl(e));
      if (state.tab !== 'private' && !e.to && !(state.me && e.name === state.me.name)) { state.unread++; $('unread').textContent = String(state.unread); }
      break;
    }
    default:
      append($('lines'), $('log'), lineEl('system', e.time, null, '*** ' + e.text));
      refreshPeersSoon();
  }
}

// The browser reopens a broken stream by itself; what was said meanwhile
// is only in the log, so the chat is read afresh from it.
function openStream() {
  const es = new EventSource('/api/events');
  let broken = false;
  es.onopen = () => {
    $('status').textContent = 'live';
    if (broken) { broken = false; resync(); }
  };
  es.onerror = () => { broken = true; $('status').textContent = 'reconnecting…'; };
  es.onmessage = (m) => onEvent(JSON.parse(m.data));
}

async function resync() {
  state.ready = false;
  state.oldest = 0;
  state.more = true;
  state.historyKeys = new Set();
  $('lines').replaceChildren();
  await Promise.all([loadOlder(), loadPrivate()]);
  flushPending();
  refreshPeersSoon();
}

// flushPending shows the live lines that arrived while the first page of
// history loaded, but not those that page already holds.
function flushPending() {
  state.ready = true;
  for (const e of state.pending.splice(0)) {
    if (e.kind === 'chat' && state.historyKeys.has(e.time + '\n' + e.text)) continue;
    if (e.kind === 'private' && state.privateKeys.has(e.time + '\n' + e.text)) continue;
    onEvent(e);
  }
}

// Peers.
let peerTimer = 0;
function refreshPeersSoon() {
  clearTimeout(peerTimer);
  peerTimer = setTimeout(refreshPeers, 300);
}

function peerItem(p, state_) {
  const li = el('li', p.banned ? 'banned' : '');
  const who = el('span', 'who', p.name);
  who.title = p.name + ' ' + p.id;
  li.append(who, el('span', 'meta', p.id.slice(0, 8) + (state_ ? ' · ' + state_ : '')));
  const b = el('button', null, 'msg');
  b.type = 'button';
  b.title = 'Private message to ' + p.name;
  b.addEventListener('click', () => { startPrivate(p.name + '#' + p.id.slice(0, 8)); });
  li.append(b);
  return li;
}

async function refreshPeers() {
  try {
    const r = await api('/api/peers');
    state.me = r.self;
    $('me').textContent = r.self.name + ' (' + r.self.id.slice(0, 8) + ')';
    document.title = r.self.name + ' · p2pchat';
    $('connected').replaceChildren(...r.connected.map((p) => peerItem(p, p.addr)));
    const known = r.known.filter((p) => !p.connected);
    $('known').replaceChildren(...known.map((p) => peerItem(p, p.banned ? 'banned' : (p.last_seen ? 'seen ' + clock(p.last_seen) : 'never seen'))));
    if (!r.connected.length) $('connected').append(el('li', 'none', 'no one'));
    if (!known.length) $('known').append(el('li', 'none', 'no one else'));
  } catch (e) {
    $('status').textContent = e.message;
  }
}

// Tabs and sending.
function setTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.tab === tab);
  $('log').hidden = tab !== 'public';
  $('privlog').hidden = tab !== 'private';
  $('to').hidden = tab !== 'private';
  if (tab === 'private') { state.unread = 0; $('unread').textContent = ''; }
  $('input').focus();
}

function startPrivate(to) {
  $('to').value = to;
  setTab('private');
  document.body.classList.remove('side-open');
}

async function submit(ev) {
  ev.preventDefault();
  const input = $('input');
  const line = input.value;
  if (!line.trim()) return;
  input.value = '';
  try {
    if (state.tab === 'private' && !line.startsWith('/')) {
      const to = $('to').value.trim();
      if (!to) throw new Error('pick a recipient first');
      await api('/api/msg', { to: to, text: line });
      return;
    }
    // The node parses the line as the terminal would: chat text,
    // "//text", or a command.
    const r = await api('/api/command', { line: line });
    for (const l of r.output) {
      showLocal(l.startsWith('*** error') ? 'system error' : (l.startsWith('*** ') ? 'system' : 'output'), l);
    }
  } catch (e) {
    showLocal('system error', '*** ' + e.message);
    input.value = line;
  }
}

async function rename() {
  const name = window.prompt('New name', state.me ? state.me.name : '');
  if (!name) return;
  try {
    const r = await api('/api/command', { line: '/nick ' + name });
    for (const l of r.output) showLocal('system', l);
  } catch (e) {
    showLocal('system error', '*** ' + e.message);
  }
  refreshPeersSoon();
}

async function start() {
  $('say').addEventListener('submit', submit);
  $('rename').addEventListener('click', rename);
  $('toggle-side').addEventListener('click', () => document.body.classList.toggle('side-open'));
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => setTab(b.dataset.tab));
  $('log').addEventListener('scroll', () => { if ($('log').scrollTop < 40) loadOlder(); });
  openStream();
  refreshPeers();
  setInterval(refreshPeers, 10000);
  await Promise.all([loadOlder(), loadPrivate()]);
  flushPending();
  $('input').focus();
}

start();
