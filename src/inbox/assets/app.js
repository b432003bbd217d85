// The kenar-hook inbox: reads /api/v1 as the signed-in client (an HttpOnly session cookie)
// and follows /api/v1/stream through single-use tickets. Every text from a record is put in
// the page with textContent, never as HTML.

const HEADERS = { 'x-kenar-inbox': '1' };
const $ = (id) => document.getElementById(id);

const state = {
  session: null,
  conversations: new Map(), // id -> { item, li, unread }
  listCursor: null,
  filter: { post: '', q: '' },
  current: null, // open conversation id
  shown: new Set(), // message ids in the open thread
  early: null, // live messages of the open thread that came before its first page did
  olderCursor: null,
  streamId: null, // last stream position seen
  source: null,
  retry: 0,
  logs: { clicks: null, events: null },
};

class SignedOut extends Error {}

async function api(path, options = {}) {
  const response = await fetch(path, {
    credentials: 'same-origin',
    ...options,
    headers: { ...HEADERS, ...(options.headers || {}) },
  });
  if (response.status === 401) {
    showSignIn();
    throw new SignedOut('signed out');
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(body?.error?.message || `HTTP ${response.status}`);
  }
  return response.status === 204 ? null : response.json();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function timeEl(iso) {
  return el('time', { datetime: iso }, when(iso));
}

function bytes(n) {
  if (typeof n !== 'number') return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

// Only http(s) links become links: a record cannot smuggle in javascript: or data: URLs.
function link(href, text) {
  try {
    const url = new URL(href);
    if (url.protocol === 'https:' || url.protocol === 'http:') {
      return el('a', { href: url.href, target: '_blank', rel: 'noopener noreferrer' }, text);
    }
  } catch {
    // not a URL: shown as text below
  }
  return document.createTextNode(href ? `${text} (${href})` : text);
}

function showError(e) {
  if (e instanceof SignedOut) return;
  $('error').textContent = e.message || String(e);
}

// ---- sign-in -------------------------------------------------------------------------

function showSignIn() {
  closeStream();
  state.session = null;
  $('app').hidden = true;
  $('signin').hidden = false;
  $('token').focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = $('token');
  $('signin-error').textContent = '';
  try {
    const response = await fetch('/inbox/session', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { ...HEADERS, 'content-type': 'application/json' },
      body: JSON.stringify({ token: input.value }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new Error(body?.error?.message || `HTTP ${response.status}`);
    }
    input.value = '';
    await start(await response.json());
  } catch (e) {
    $('signin-error').textContent = `Not signed in: ${e.message}`;
  }
}

async function signOut() {
  closeStream();
  await fetch('/inbox/session', { method: 'DELETE', credentials: 'same-origin', headers: HEADERS });
  state.conversations.clear();
  $('conversations').replaceChildren();
  $('thread').replaceChildren();
  state.current = null;
  state.streamId = null;
  showSignIn();
}

// ---- conversations -------------------------------------------------------------------

function side(message) {
  const s = (message.sender?.side || '').toUpperCase();
  if (s === 'BOT' || (message.sender?.type || '').toUpperCase() === 'BOT') return 'bot';
  if (s === 'SELLER' || s === 'SUPPLY') return 'seller';
  return 'buyer';
}

function previewText(last) {
  if (!last) return '';
  return last.text || last.type.toLowerCase();
}

function conversationButton(entry) {
  const { item } = entry;
  const title = item.post_token ? `Post ${item.post_token}` : `Conversation ${item.id.slice(0, 8)}`;
  const name = item.post_title ? el('span', { class: 'title', dir: 'auto' }, item.post_title) : null;
  const button = el('button', { type: 'button', 'data-id': item.id, 'aria-current': state.current === item.id ? 'true' : 'false' },
    el('span', { class: 'post', dir: 'auto' }, title),
    timeEl(item.last_message_at),
    name,
    el('span', { class: 'preview', dir: 'auto' }, previewText(item.last_message)),
    el('span', { class: 'badge', 'aria-label': 'new messages' }, entry.unread ? String(entry.unread) : ''));
  button.addEventListener('click', () => openConversation(item.id));
  return button;
}

function renderConversation(entry) {
  const li = entry.li || el('li');
  li.replaceChildren(conversationButton(entry));
  entry.li = li;
  return li;
}

function listEmpty() {
  $('list-empty').hidden = state.conversations.size > 0;
}

async function loadConversations(more = false) {
  const params = new URLSearchParams({ limit: '50', include: 'last_message' });
  if (state.filter.post) params.set('post_token', state.filter.post);
  if (more && state.listCursor) params.set('cursor', state.listCursor);
  if (state.filter.q) return searchConversations();
  const page = await api(`/api/v1/conversations?${params}`);
  if (!more) {
    state.conversations.clear();
    $('conversations').replaceChildren();
  }
  const items = page.items.filter((c) => !state.conversations.has(c.id));
  $('conversations').append(...items.map((item) => {
    const entry = { item, li: null, unread: 0 };
    state.conversations.set(item.id, entry);
    return renderConversation(entry);
  }));
  state.listCursor = page.next_cursor;
  $('more-conversations').hidden = !page.next_cursor;
  listEmpty();
}

// Text search runs over messages; the list shows the conversations they belong to.
async function searchConversations() {
  const params = new URLSearchParams({ q: state.filter.q, order: 'desc', limit: '200' });
  if (state.filter.post) params.set('post_token', state.filter.post);
  const page = await api(`/api/v1/messages?${params}`);
  state.conversations.clear();
  $('conversations').replaceChildren();
  for (const m of page.items) {
    if (state.conversations.has(m.conversation_id)) continue;
    const item = {
      id: m.conversation_id, post_token: m.post_token, last_message_at: m.sent_at,
      last_message: { type: m.type, text: m.text, sender_side: m.sender?.side },
    };
    const entry = { item, li: null, unread: 0 };
    state.conversations.set(item.id, entry);
    $('conversations').append(renderConversation(entry));
  }
  $('more-conversations').hidden = true;
  listEmpty();
}

// ---- the thread ----------------------------------------------------------------------

function body(m) {
  const d = m.data || {};
  const parts = [];
  switch ((m.type || '').toUpperCase()) {
    case 'IMAGE': {
      const size = [d.width_px && d.height_px ? `${d.width_px}×${d.height_px}` : '', bytes(d.size_bytes)].filter(Boolean).join(', ');
      parts.push(link(d.link, `Image${size ? ` (${size})` : ''}`));
      break;
    }
    case 'FILE':
      parts.push(link(d.link, `File: ${d.name || 'unnamed'}${d.size_bytes ? ` (${bytes(d.size_bytes)})` : ''}`));
      break;
    case 'VOICE':
      parts.push(link(d.link, `Voice message${d.size_bytes ? ` (${bytes(d.size_bytes)})` : ''}`));
      break;
    case 'VIDEO':
      parts.push(link(d.link, `Video${d.size_bytes ? ` (${bytes(d.size_bytes)})` : ''}`));
      break;
    case 'LOCATION':
      parts.push(document.createTextNode(`Location: ${d.latitude ?? '?'}, ${d.longitude ?? '?'}`));
      break;
    case 'CONTACT':
      // Each part isolated, so a Persian name does not reorder the phone number around it.
      parts.push(document.createTextNode('Contact: '));
      if (!d.name && !d.phone) parts.push(document.createTextNode('unknown'));
      if (d.name) parts.push(el('bdi', {}, d.name));
      if (d.name && d.phone) parts.push(document.createTextNode(' '));
      if (d.phone) parts.push(el('bdi', { dir: 'ltr' }, d.phone));
      break;
    default:
      break;
  }
  if (m.text) {
    if (parts.length) parts.push(document.createTextNode('\n'));
    parts.push(document.createTextNode(m.text));
  }
  return el('span', { class: 'body', dir: 'auto' }, ...parts);
}

function bubble(m) {
  const who = side(m);
  const node = el('li', { class: `msg ${who}`, 'data-id': m.id },
    el('span', { class: 'who-side' }, who),
    body(m),
    el('span', { class: 'meta' }, timeEl(m.sent_at)));
  node.key = key(m);
  return node;
}

async function openConversation(id) {
  state.current = id;
  state.shown.clear();
  state.olderCursor = null;
  const entry = state.conversations.get(id);
  if (entry) {
    entry.unread = 0;
    for (const e of state.conversations.values()) renderConversation(e);
  }
  $('panel-conversations').classList.add('open');
  const item = entry?.item;
  $('thread-title').textContent = [item?.post_title, item?.post_token && `Post ${item.post_token}`, id].filter(Boolean).join(' · ');
  $('thread').replaceChildren();
  state.early = [];
  const page = await api(`/api/v1/conversations/${encodeURIComponent(id)}/messages?order=desc&limit=50`);
  if (state.current !== id) return;
  prepend(page);
  // Placed after the page, so each lands in order, or waits for "Older messages".
  const early = state.early;
  state.early = null;
  for (const m of early) if (!state.shown.has(m.id)) place(m);
  const scroll = $('thread-scroll');
  scroll.scrollTop = scroll.scrollHeight;
}

// Older messages go above without moving what is on screen.
function prepend(page) {
  const fresh = page.items.filter((m) => !state.shown.has(m.id)).reverse();
  for (const m of fresh) state.shown.add(m.id);
  const scroll = $('thread-scroll');
  const fromBottom = scroll.scrollHeight - scroll.scrollTop;
  state.olderCursor = page.next_cursor;
  $('older').hidden = !page.next_cursor;
  $('thread').prepend(...fresh.map(bubble));
  scroll.scrollTop = scroll.scrollHeight - fromBottom;
}

async function older() {
  if (!state.olderCursor || !state.current) return;
  const id = state.current;
  const params = new URLSearchParams({ order: 'desc', limit: '50', cursor: state.olderCursor });
  const page = await api(`/api/v1/conversations/${encodeURIComponent(id)}/messages?${params}`);
  if (state.current !== id) return;
  prepend(page);
}

// ---- live ----------------------------------------------------------------------------

function setConnection(s) {
  const c = $('conn');
  c.dataset.state = s;
  c.textContent = s;
}

function closeStream() {
  if (state.source) state.source.close();
  state.source = null;
  setConnection('offline');
}

function onMessage(m) {
  const entry = state.conversations.get(m.conversation_id);
  const last = { type: m.type, text: m.text ? m.text.slice(0, 120) : null, sender_side: m.sender?.side };
  if (entry) {
    entry.item.last_message = last;
    entry.item.last_message_at = m.sent_at;
    if (m.metadata?.title) entry.item.post_title = m.metadata.title;
    if (state.current !== m.conversation_id) entry.unread += 1;
    $('conversations').prepend(renderConversation(entry));
  } else if (!state.filter.q && (!state.filter.post || state.filter.post === m.post_token)) {
    const item = {
      id: m.conversation_id, post_token: m.post_token, post_title: m.metadata?.title || null,
      last_message_at: m.sent_at, last_message: last,
    };
    const fresh = { item, li: null, unread: state.current === m.conversation_id ? 0 : 1 };
    state.conversations.set(item.id, fresh);
    $('conversations').prepend(renderConversation(fresh));
    listEmpty();
  }
  if (state.current === m.conversation_id && !state.shown.has(m.id)) {
    if (state.early) state.early.push(m);
    else place(m);
  }
}

// A thread is in the lists' order: sent time, then id.
function before(a, b) {
  return a.at < b.at || (a.at === b.at && a.id < b.id);
}

function key(m) {
  return { at: Date.parse(m.sent_at), id: m.id };
}

// A live message goes where it belongs in the thread (nearly always last). One older than
// every message shown waits for "Older messages", unless the thread is shown whole.
function place(m) {
  const k = key(m);
  const thread = $('thread');
  let after = thread.lastElementChild;
  while (after && before(k, after.key)) after = after.previousElementSibling;
  if (!after && state.olderCursor) return;
  state.shown.add(m.id);
  const scroll = $('thread-scroll');
  const atBottom = scroll.scrollHeight - scroll.scrollTop - scroll.clientHeight < 80;
  const node = bubble(m);
  if (after) after.after(node);
  else thread.prepend(node);
  if (atBottom) scroll.scrollTop = scroll.scrollHeight;
}

function connect() {
  return new Promise((resolve) => {
    const params = new URLSearchParams();
    if (state.streamId) params.set('from', state.streamId);
    const include = ['events', 'clicks'].filter((s) => state.session.scopes.includes(s));
    if (include.length) params.set('include', include.join(','));
    setConnection(state.retry ? 'reconnecting' : 'connecting');
    api(`/api/v1/stream/tickets?${params}`, { method: 'POST' }).then(({ ticket }) => {
      const source = new EventSource(`/api/v1/stream?ticket=${encodeURIComponent(ticket)}`);
      state.source = source;
      source.onopen = () => {
        state.retry = 0;
        setConnection('live');
        resolve();
      };
      const track = (handle) => (e) => {
        if (e.lastEventId) state.streamId = e.lastEventId;
        handle(JSON.parse(e.data));
      };
      source.addEventListener('message', track(onMessage));
      source.addEventListener('event', track((item) => liveLog('events', item)));
      source.addEventListener('click', track((item) => liveLog('clicks', item)));
      // A ticket opens one stream: the browser's own retry would reuse it, so a new ticket
      // is asked for, from the last position seen.
      source.onerror = () => {
        source.close();
        if (state.source !== source) return;
        state.source = null;
        reconnect();
        resolve();
      };
    }).catch((e) => {
      if (e instanceof SignedOut) return resolve();
      reconnect();
      resolve();
    });
  });
}

function reconnect() {
  setConnection('reconnecting');
  const wait = Math.min(5000, 250 * 2 ** state.retry);
  state.retry += 1;
  setTimeout(() => { if (state.session && !state.source) connect(); }, wait);
}

// ---- logs ----------------------------------------------------------------------------

const LOGS = {
  clicks: (c) => [timeEl(c.received_at), c.post_token || '', c.side || '', c.rule || '', c.url ? link(c.url, c.url) : '', c.outcome],
  events: (e) => [timeEl(e.received_at), e.type, e.subtype || '', e.subject_id || '', e.post_token || ''],
};

function row(cells) {
  return el('tr', {}, ...cells.map((c) => el('td', { dir: 'auto' }, c)));
}

async function loadLog(name, more = false) {
  const params = new URLSearchParams({ order: 'desc', limit: '50' });
  if (more && state.logs[name]) params.set('cursor', state.logs[name]);
  const page = await api(`/api/v1/${name}?${params}`);
  const rows = page.items.map((item) => row(LOGS[name](item)));
  if (more) $(name).append(...rows);
  else $(name).replaceChildren(...rows);
  state.logs[name] = page.next_cursor;
  $(`more-${name}`).hidden = !page.next_cursor;
}

function liveLog(name, item) {
  if (!$(`panel-${name}`).hidden) $(name).prepend(row(LOGS[name](item)));
}

async function loadForwarding() {
  const page = await api('/api/v1/forwarding/endpoints');
  $('endpoints').replaceChildren(...page.items.map((e) => row([
    e.name, e.disabled_reason ? `${e.state}: ${e.disabled_reason}` : e.state,
    `${e.lag_records} records, ${e.lag_seconds.toFixed(1)} s`, String(e.pending), String(e.dead),
    timeEl(e.last_success_at), e.last_error ? `${e.last_error} (${when(e.last_error_at)})` : '',
  ])));
}

// ---- tabs ----------------------------------------------------------------------------

const TABS = { conversations: 'messages', clicks: 'clicks', events: 'events', forwarding: 'forwarding' };

function tabs() {
  return Object.keys(TABS).map((name) => $(`tab-${name}`)).filter((t) => !t.hidden);
}

async function selectTab(name) {
  for (const tab of tabs()) {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(tab.getAttribute('aria-controls')).hidden = !on;
  }
  try {
    if (name === 'clicks' || name === 'events') await loadLog(name);
    if (name === 'forwarding') await loadForwarding();
  } catch (e) {
    showError(e);
  }
}

function tabKeys(event) {
  const list = tabs();
  const i = list.indexOf(document.activeElement);
  if (i < 0) return;
  let next = null;
  if (event.key === 'ArrowRight') next = list[(i + 1) % list.length];
  if (event.key === 'ArrowLeft') next = list[(i - 1 + list.length) % list.length];
  if (event.key === 'Home') next = list[0];
  if (event.key === 'End') next = list[list.length - 1];
  if (next) {
    event.preventDefault();
    next.focus();
    selectTab(next.id.slice(4));
  }
}

// ---- start ---------------------------------------------------------------------------

async function start(session) {
  state.session = session;
  $('signin').hidden = true;
  $('app').hidden = false;
  $('who').textContent = `${session.client}${session.post_tokens ? ` (${session.post_tokens.join(', ')})` : ''}`;
  for (const [name, scope] of Object.entries(TABS)) {
    $(`tab-${name}`).hidden = !session.scopes.includes(scope);
  }
  const first = tabs()[0];
  if (!first) {
    $('error').textContent = `Client ${session.client} has none of the scopes the inbox shows.`;
    return;
  }
  await selectTab(first.id.slice(4));
  if (session.scopes.includes('messages')) {
    // The stream first, then the list: a message stored in between is in both, shown once.
    await connect();
    await loadConversations().catch(showError);
  }
}

function wire() {
  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', () => signOut().catch(showError));
  $('filters').addEventListener('submit', (e) => {
    e.preventDefault();
    state.filter = { post: $('f-post').value.trim(), q: $('f-q').value.trim() };
    loadConversations().catch(showError);
  });
  $('more-conversations').addEventListener('click', () => loadConversations(true).catch(showError));
  $('older').addEventListener('click', () => older().catch(showError));
  $('back').addEventListener('click', () => $('panel-conversations').classList.remove('open'));
  $('more-clicks').addEventListener('click', () => loadLog('clicks', true).catch(showError));
  $('more-events').addEventListener('click', () => loadLog('events', true).catch(showError));
  for (const name of Object.keys(TABS)) {
    $(`tab-${name}`).addEventListener('click', () => selectTab(name));
  }
  document.querySelector('.tabs').addEventListener('keydown', tabKeys);
}

wire();
fetch('/inbox/session', { credentials: 'same-origin', headers: HEADERS })
  .then((r) => (r.ok ? r.json().then(start) : showSignIn()))
  .catch(() => showSignIn());
