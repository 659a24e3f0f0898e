// The web UI of `nightshift serve` (docs/server.md). Plain ES2020, no framework, no
// build step: the server embeds index.html, app.js and style.css and serves them at
// /, /app.js and /style.css.
//
// Every element is built with h()/s() below (text goes in as text nodes, never as
// HTML), so nothing the server or a pipeline wrote can inject markup.
'use strict';

const TOKEN_KEY = 'nightshift-token';
const API = '/api/v1';

// ---------------------------------------------------------------- DOM helpers

const SVGNS = 'http://www.w3.org/2000/svg';
const PROPS = new Set(['value', 'checked', 'selected', 'disabled', 'open', 'indeterminate']);

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// h('a', {href: '#/runs'}, 'text', child, [more]) -> HTMLElement.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

// The same for SVG elements.
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------- formatting

const pad2 = (n) => String(n).padStart(2, '0');

function fmtTime(ms) {
  if (!ms || typeof ms !== 'number') return '—';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

function fmtClock(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

function fmtDur(ms) {
  if (ms === null || ms === undefined || !isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const sec = ms / 1000;
  if (sec < 10) return `${sec.toFixed(1)}s`;
  if (sec < 60) return `${Math.round(sec)}s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m}m ${pad2(Math.floor(sec % 60))}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${pad2(m % 60)}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

function fmtBytes(n) {
  if (typeof n !== 'number' || !isFinite(n)) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

function fmtMoney(v) {
  if (typeof v !== 'number' || !isFinite(v)) return String(v);
  return v >= 1 || v === 0 ? v.toFixed(2) : v.toFixed(4);
}

function fmtValue(v) {
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

// "a=1  b=two" for an object of params.
function fmtParams(params) {
  if (!params || typeof params !== 'object') return '';
  return Object.entries(params).map(([k, v]) => `${k}=${fmtValue(v)}`).join('  ');
}

function truncate(str, n) {
  str = String(str);
  return str.length > n ? str.slice(0, n - 1) + '…' : str;
}

function basename(path) {
  const p = String(path || '');
  const i = p.lastIndexOf('/');
  return i >= 0 ? p.slice(i + 1) : p;
}

// A duration that ticks while `end` is 0 (see the ticker at the bottom).
function durationEl(start, end) {
  if (!start) return h('span', {class: 'muted'}, '—');
  if (end) return h('span', null, fmtDur(end - start));
  return h('span', {'data-since': start}, fmtDur(Date.now() - start));
}

// ---------------------------------------------------------------- status colours

// One class per status (st-running, st-timed_out, ...); the colours live in
// style.css and are the same on badges, DAG boxes and Gantt bars.
function stClass(status) {
  return 'st-' + String(status || 'unknown').toLowerCase().replace(/[^a-z0-9_-]/g, '');
}

function badge(status, title) {
  return h('span', {class: `badge ${stClass(status)}`, title: title || null},
    String(status || '?').replace(/_/g, ' '));
}

// ---------------------------------------------------------------- token and API

let token = '';
try { token = localStorage.getItem(TOKEN_KEY) || ''; } catch (e) { /* storage disabled */ }

// Takes `token=XYZ` out of the fragment (#token=abc, #/runs?token=abc, #/x?a=1&token=abc),
// stores it and rewrites the address without it.
function takeTokenFromHash() {
  const raw = location.hash;
  const m = raw.match(/[#?&]token=([^&]*)/);
  if (!m) return;
  let value = m[1];
  try { value = decodeURIComponent(value); } catch (e) { /* keep raw */ }
  if (value) saveToken(value);
  let rest = raw.slice(1);
  let [path, query = ''] = rest.split(/\?(.*)/s);
  path = path.replace(/&token=[^&]*/, '');
  let cleaned;
  if (path.startsWith('token=') || path.startsWith('&token=')) {
    // #token=abc (possibly #token=abc&other)
    cleaned = '';
  } else {
    const q = new URLSearchParams(query);
    q.delete('token');
    const qs = q.toString();
    cleaned = path + (qs ? '?' + qs : '');
  }
  rest = cleaned || '/runs';
  history.replaceState(null, '', location.pathname + location.search + '#' + rest);
}

function saveToken(t) {
  token = t;
  try { localStorage.setItem(TOKEN_KEY, t); } catch (e) { /* storage disabled */ }
}

function forgetToken() {
  token = '';
  try { localStorage.removeItem(TOKEN_KEY); } catch (e) { /* storage disabled */ }
}

function authHeaders(extra) {
  return Object.assign({Authorization: `Bearer ${token}`}, extra || {});
}

class HttpError extends Error {
  constructor(status, reason) {
    super(reason);
    this.status = status;
  }
}

async function errorFrom(res) {
  let reason = `${res.status} ${res.statusText}`;
  try {
    const text = await res.text();
    try {
      const j = JSON.parse(text);
      if (j && j.error && j.error.reason) reason = j.error.reason;
    } catch (e) {
      if (text) reason = truncate(text, 300);
    }
  } catch (e) { /* no body */ }
  return new HttpError(res.status, reason);
}

// fetch with the bearer token. Returns the parsed JSON (or text), or the Response
// itself with {raw: true}. A 401 shows the token form.
async function api(path, {method = 'GET', body, signal, raw = false, headers} = {}) {
  const hdrs = authHeaders(headers);
  if (body !== undefined) hdrs['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers: hdrs, signal, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new HttpError(0, `cannot reach the server (${e.message})`);
  }
  if (res.status === 401) {
    needToken(token ? 'The server did not accept the stored token.' : '');
    throw new HttpError(401, 'unauthorized');
  }
  if (!res.ok) throw await errorFrom(res);
  if (raw) return res;
  const text = await res.text();
  const ct = res.headers.get('content-type') || '';
  if (ct.includes('json') || (!ct && /^\s*[{[]/.test(text))) {
    try { return JSON.parse(text); } catch (e) { if (ct.includes('json')) throw new HttpError(res.status, 'bad JSON from server'); }
  }
  return text;
}

function isAbort(e) {
  return e && (e.name === 'AbortError' || (e instanceof HttpError && e.status === 401));
}

function errorBanner(e) {
  const msg = e instanceof HttpError
    ? (e.status ? `${e.status}: ${e.message}` : e.message)
    : String(e && e.message || e);
  return h('div', {class: 'error-banner', role: 'alert'}, msg);
}

let toastTimer = null;
function toast(msg, kind) {
  let el = document.getElementById('toast');
  if (!el) {
    el = h('div', {id: 'toast', role: 'status'});
    document.body.appendChild(el);
  }
  el.className = `toast ${kind || ''}`;
  replace(el, msg);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

// ---------------------------------------------------------------- Server-Sent Events

// Incremental text/event-stream parser (the WHATWG rules): lines end with CRLF, LF
// or CR; "field: value" (one space after the colon dropped); lines starting with ":"
// are comments; a blank line dispatches. An event with an `event:` field but no
// `data:` line is dispatched too (with data ""), so `event: end` alone still works.
function sseParser(dispatch) {
  let buf = '';
  let data = [];
  let event = '';
  let lastId = '';

  function line(l) {
    if (l === '') {
      if (data.length || event) dispatch({id: lastId, event: event || 'message', data: data.join('\n')});
      data = [];
      event = '';
      return;
    }
    if (l[0] === ':') return;
    const i = l.indexOf(':');
    const field = i < 0 ? l : l.slice(0, i);
    let value = i < 0 ? '' : l.slice(i + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'id') { if (!value.includes('\0')) lastId = value; }
    // `retry:` is ignored: reconnects wait 2 s.
  }

  return {
    push(chunk) {
      buf += chunk;
      let start = 0;
      for (let i = 0; i < buf.length; i++) {
        const c = buf[i];
        if (c === '\n' || c === '\r') {
          if (c === '\r' && i === buf.length - 1) break; // maybe a CRLF split across chunks
          line(buf.slice(start, i));
          if (c === '\r' && buf[i + 1] === '\n') i++;
          start = i + 1;
        }
      }
      buf = buf.slice(start);
    },
    finish() {
      if (buf) { line(buf); buf = ''; }
      // An event not closed by a blank line is dropped (as the spec says).
    },
    lastId: () => lastId,
  };
}

// Reads one SSE response with fetch + ReadableStream (EventSource cannot send the
// bearer token). Resolves when the server closes the stream; rejects on errors.
// onOpen(response) runs once the headers are in; onBytes() on every chunk.
async function readSSE(url, {signal, lastEventId, onOpen, onEvent, onBytes, onPlainText}) {
  const headers = authHeaders({Accept: 'text/event-stream'});
  if (lastEventId) headers['Last-Event-ID'] = lastEventId;
  const res = await fetch(url, {headers, signal, cache: 'no-store'});
  if (res.status === 401) {
    needToken(token ? 'The server did not accept the stored token.' : '');
    throw new HttpError(401, 'unauthorized');
  }
  if (!res.ok) throw await errorFrom(res);
  if (onOpen) onOpen(res);
  const ct = res.headers.get('content-type') || '';
  if (!ct.includes('event-stream') && onPlainText) {
    onPlainText(await res.text());
    return lastEventId || '';
  }
  if (!res.body) throw new HttpError(0, 'this browser cannot stream responses');
  const parser = sseParser(onEvent);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    if (onBytes) onBytes();
    parser.push(decoder.decode(value, {stream: true}));
  }
  parser.push(decoder.decode());
  parser.finish();
  return parser.lastId();
}

// The one /api/v1/events stream of the page. Reconnects 2 s after any error or
// close, with Last-Event-ID; a stream silent for 45 s (the server comments every
// 15 s) is treated as dead. Pages get every event, plus {event: 'reconnect'} after a
// reconnect (they refetch: events may have been missed).
const live = {
  state: 'offline',
  lastId: '',
  ctrl: null,
  timer: null,
  everOpen: false,
  listeners: new Set(),

  start() {
    if (this.ctrl || !token) return;
    this.connect();
  },

  stop() {
    const ctrl = this.ctrl;
    this.ctrl = null;
    clearTimeout(this.timer);
    if (ctrl) ctrl.abort();
    this.setState('offline');
  },

  async connect() {
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    this.setState('connecting');
    let watchdog = null;
    const kick = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => ctrl.abort(), 45000);
    };
    let authFailed = false;
    try {
      kick();
      this.lastId = await readSSE(`${API}/events`, {
        signal: ctrl.signal,
        lastEventId: this.lastId,
        onBytes: kick,
        onOpen: () => {
          this.setState('live');
          if (this.everOpen) this.emit({event: 'reconnect', data: null});
          this.everOpen = true;
        },
        onEvent: (ev) => {
          if (ev.id) this.lastId = ev.id;
          let data = ev.data;
          try { data = JSON.parse(ev.data); } catch (e) { /* keep text */ }
          this.emit({event: ev.event, id: ev.id, data});
        },
      }) || this.lastId;
    } catch (e) {
      if (e instanceof HttpError && e.status === 401) authFailed = true;
    }
    clearTimeout(watchdog);
    if (this.ctrl !== ctrl) return; // stopped on purpose
    this.setState('offline');
    if (authFailed) { this.ctrl = null; return; }
    this.timer = setTimeout(() => { if (this.ctrl === ctrl) this.connect(); }, 2000);
  },

  emit(ev) {
    for (const fn of this.listeners) {
      try { fn(ev); } catch (e) { console.error(e); }
    }
  },

  setState(st) {
    this.state = st;
    const el = document.getElementById('conn');
    if (!el) return;
    el.dataset.state = st;
    el.querySelector('.label').textContent = st;
    el.title = st === 'live' ? 'event stream connected: pages update live'
      : st === 'connecting' ? 'connecting to the event stream…'
        : 'event stream disconnected (retrying every 2 s)';
  },
};

// ---------------------------------------------------------------- page plumbing

// A page's context: its AbortSignal and timers die with it.
function makeCtx() {
  const ac = new AbortController();
  const timers = new Set();
  const cleanups = [];
  return {
    signal: ac.signal,
    get alive() { return !ac.signal.aborted; },
    setTimeout(fn, ms) { const t = setTimeout(fn, ms); timers.add(t); return t; },
    setInterval(fn, ms) { const t = setInterval(fn, ms); timers.add(t); return t; },
    onDispose(fn) { cleanups.push(fn); },
    dispose() {
      ac.abort();
      for (const t of timers) clearTimeout(t);
      for (const fn of cleanups) { try { fn(); } catch (e) { /* ignore */ } }
    },
  };
}

// Calls fn at most once per `ms`, with a trailing call, never two at once.
function throttled(ctx, fn, ms = 500) {
  let running = false;
  let again = false;
  let last = 0;
  let timer = null;
  const run = async () => {
    timer = null;
    if (!ctx.alive) return;
    if (running) { again = true; return; }
    running = true;
    last = Date.now();
    try { await fn(); } catch (e) { if (!isAbort(e)) console.error(e); }
    running = false;
    if (again) { again = false; schedule(); }
  };
  const schedule = () => {
    if (timer || !ctx.alive) return;
    if (running) { again = true; return; }
    timer = ctx.setTimeout(run, Math.max(0, last + ms - Date.now()));
  };
  return schedule;
}

function debounce(ctx, fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = ctx.setTimeout(() => fn(...args), ms);
  };
}

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/runs';
  const qi = raw.indexOf('?');
  const path = qi >= 0 ? raw.slice(0, qi) : raw;
  const query = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : '');
  const segs = path.split('/').filter((x) => x !== '').map((x) => {
    try { return decodeURIComponent(x); } catch (e) { return x; }
  });
  return {segs, query, path};
}

// '#/runs?state=failed' from ('/runs', {state: 'failed', q: ''}); empty values dropped.
function hashOf(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  const qs = q.toString();
  return '#' + path + (qs ? '?' + qs : '');
}

const runHash = (run) => `#/runs/${enc(run)}`;
const filesHash = (run, segs) => `#/runs/${enc(run)}/files/${(segs || []).map(enc).join('/')}`;
const logsHash = (run, task, stream, attempt) =>
  hashOf(`/runs/${enc(run)}/logs`, {task, stream: stream || 'out', attempt: attempt || ''});

let page = null;
let main = null;

function route() {
  if (page) { page.ctx.dispose(); page = null; }
  main = document.getElementById('main');
  clear(main);
  window.scrollTo(0, 0);
  const {segs, query} = parseHash();
  const section = segs[0] || 'runs';
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === section);
  }
  if (!token) { renderLogin(''); return; }
  live.start();
  const ctx = makeCtx();
  let onEvent = null;
  const view = h('div', {class: 'page'});
  main.appendChild(view);
  if (section === 'runs' && segs.length === 1) onEvent = pageRuns(view, query, ctx);
  else if (section === 'runs' && segs.length === 2) onEvent = pageRun(view, segs[1], query, ctx);
  else if (section === 'runs' && segs[2] === 'logs' && segs.length === 3) onEvent = pageLogs(view, segs[1], query, ctx);
  else if (section === 'runs' && segs[2] === 'files') onEvent = pageFiles(view, segs[1], segs.slice(3), ctx);
  else if (section === 'queue') onEvent = pageQueue(view, query, ctx);
  else if (section === 'submit') onEvent = pageSubmit(view, query, ctx);
  else view.appendChild(h('div', {class: 'card'}, h('h1', null, 'Not found'), h('p', null, 'No page at ', h('code', null, location.hash), '. ', h('a', {href: '#/runs'}, 'Runs'))));
  page = {ctx, onEvent};
  refreshServerInfo();
}

live.listeners.add((ev) => {
  if (page && page.onEvent) page.onEvent(ev);
});

// ---------------------------------------------------------------- token form

function needToken(message) {
  if (document.querySelector('[data-testid="login"]')) return;
  if (page) { page.ctx.dispose(); page = null; }
  live.stop();
  renderLogin(message);
}

function renderLogin(message) {
  main = document.getElementById('main');
  clear(main);
  const input = h('input', {id: 'token-input', type: 'password', autocomplete: 'off', spellcheck: 'false', placeholder: 'token', required: true});
  const form = h('form', {class: 'card login', 'data-testid': 'login', onsubmit: (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    saveToken(t);
    route();
  }},
  h('h1', null, 'Server token'),
  message ? h('p', {class: 'error-text'}, message) : null,
  h('p', null, 'This server needs its access token. Paste the content of ',
    h('code', null, 'ROOT/server.token'), ' (or ', h('code', null, '$NIGHTSHIFT_TOKEN'),
    '), or open the address ', h('code', null, 'nightshift serve'),
    ' printed at start: it carries the token after ', h('code', null, '#token='), '.'),
  h('div', {class: 'row'}, input, h('button', {type: 'submit', class: 'primary', id: 'token-save'}, 'Save')),
  h('p', {class: 'muted small'}, 'The token is kept in this browser\'s local storage only.'));
  main.appendChild(form);
  input.focus();
}

// ---------------------------------------------------------------- server info

let infoFetched = 0;
async function refreshServerInfo() {
  if (Date.now() - infoFetched < 30000 || !token) return;
  infoFetched = Date.now();
  try {
    const st = await api(`${API}/status`);
    const el = document.getElementById('server-info');
    const bits = [];
    if (st.version) bits.push(`v${String(st.version).replace(/^v/, '')}`);
    if (st.draining) bits.push('draining');
    el.textContent = bits.join(' · ');
    el.title = st.root ? `root ${st.root}` : '';
  } catch (e) { infoFetched = 0; }
}

// ---------------------------------------------------------------- runs page

const RUN_STATES = ['running', 'succeeded', 'failed', 'cancelled', 'stopped'];

function pageRuns(view, query, ctx) {
  const f = {
    state: query.get('state') || '',
    pipeline: query.get('pipeline') || '',
    q: query.get('q') || '',
    before: query.get('before') || '',
  };
  const stateSel = h('select', {id: 'runs-state', 'aria-label': 'state'},
    h('option', {value: ''}, 'all states'),
    RUN_STATES.map((st) => h('option', {value: st, selected: st === f.state}, st)));
  const pipeInput = h('input', {id: 'runs-pipeline', type: 'text', placeholder: 'pipeline', value: f.pipeline, 'aria-label': 'pipeline'});
  const qInput = h('input', {id: 'runs-q', type: 'search', placeholder: 'search run id, pipeline, params', value: f.q, 'aria-label': 'search'});
  const info = h('span', {class: 'muted'});
  const body = h('div', {class: 'table-wrap'});
  const pager = h('div', {class: 'pager'});

  view.append(
    h('div', {class: 'page-head'}, h('h1', null, 'Runs'), h('div', {class: 'toolbar'}, stateSel, pipeInput, qInput, info)),
    body, pager);

  const syncHash = () => {
    history.replaceState(null, '', hashOf('/runs', f));
  };
  const reload = throttled(ctx, load, 500);
  const onFilter = () => {
    f.state = stateSel.value;
    f.pipeline = pipeInput.value.trim();
    f.q = qInput.value.trim();
    f.before = '';
    syncHash();
    reload();
  };
  stateSel.addEventListener('change', onFilter);
  const typed = debounce(ctx, onFilter, 300);
  pipeInput.addEventListener('input', typed);
  qInput.addEventListener('input', typed);

  async function load() {
    const p = new URLSearchParams({limit: '100'});
    for (const k of ['state', 'pipeline', 'q', 'before']) if (f[k]) p.set(k, f[k]);
    let r;
    try {
      r = await api(`${API}/runs?${p}`, {signal: ctx.signal});
    } catch (e) {
      if (!isAbort(e)) replace(body, errorBanner(e));
      return;
    }
    if (!ctx.alive) return;
    const runs = Array.isArray(r.runs) ? r.runs : [];
    info.textContent = `${runs.length}${r.next ? '+' : ''} run${runs.length === 1 ? '' : 's'}`;
    replace(body, runsTable(runs));
    replace(pager,
      f.before ? h('a', {href: hashOf('/runs', {...f, before: ''})}, '« newest') : null,
      r.next ? h('a', {href: hashOf('/runs', {...f, before: r.next}), 'data-testid': 'older'}, 'older »') : null);
  }

  load();
  return (ev) => {
    if (ev.event === 'run' || ev.event === 'reconnect') reload();
  };
}

function runsTable(runs) {
  if (!runs.length) return h('div', {class: 'empty'}, 'No runs match.');
  return h('table', {class: 'grid', 'data-testid': 'runs'},
    h('thead', null, h('tr', null,
      ['Run', 'Pipeline', 'Status', 'Created', 'Duration', 'Job', 'Params', 'Message'].map((t) => h('th', null, t)))),
    h('tbody', null, runs.map((r) => h('tr', {'data-run': r.run_id},
      h('td', {class: 'mono'}, h('a', {href: runHash(r.run_id)}, r.run_id)),
      h('td', {title: r.pipeline_file || ''}, r.pipeline || basename(r.pipeline_file)),
      h('td', null, badge(r.status)),
      h('td', {class: 'nowrap'}, fmtTime(r.created_at)),
      h('td', {class: 'nowrap num'}, r.status === 'running' ? durationEl(r.created_at, 0) : durationEl(r.created_at, r.finished_at)),
      h('td', {class: 'mono small'}, r.job_id ? h('a', {href: hashOf('/queue', {job: r.job_id})}, truncate(r.job_id, 14)) : h('span', {class: 'muted'}, '—')),
      h('td', {class: 'small clip', title: fmtParams(r.params)}, truncate(fmtParams(r.params), 80)),
      h('td', {class: 'small clip', title: r.message || ''}, truncate(r.message || '', 80))))));
}

// ---------------------------------------------------------------- DAG layout

// Longest-path layering: a step's layer is 1 + the largest layer of its needs.
// Inside a layer, steps are ordered by the mean position of their needs (one
// barycentre pass), which keeps most edges straight.
function layoutDag(steps) {
  const byId = new Map(steps.map((st, i) => [st.id, {st, i}]));
  const layer = new Map();
  const visiting = new Set();
  const L = (id) => {
    if (layer.has(id)) return layer.get(id);
    if (visiting.has(id)) return 0; // a cycle: cannot happen for a valid pipeline
    visiting.add(id);
    let l = 0;
    for (const n of byId.get(id).st.needs || []) if (byId.has(n)) l = Math.max(l, L(n) + 1);
    visiting.delete(id);
    layer.set(id, l);
    return l;
  };
  for (const st of steps) L(st.id);
  const layers = [];
  for (const st of steps) (layers[layer.get(st.id)] = layers[layer.get(st.id)] || []).push(st);
  const pos = new Map();
  layers.forEach((ls, li) => {
    if (li > 0) {
      const key = (st) => {
        const ns = (st.needs || []).filter((n) => pos.has(n));
        return ns.length ? ns.reduce((a, n) => a + pos.get(n), 0) / ns.length : Infinity;
      };
      ls.sort((a, b) => (key(a) - key(b)) || (byId.get(a.id).i - byId.get(b.id).i));
    }
    ls.forEach((st, k) => pos.set(st.id, k - (ls.length - 1) / 2));
  });
  return {layers, layer};
}

// Step ids in layer order (for sorting Gantt rows and tasks).
function stepOrder(steps) {
  const order = new Map();
  let k = 0;
  for (const ls of layoutDag(steps).layers) for (const st of ls || []) order.set(st.id, k++);
  return order;
}

function stepCounts(st) {
  const c = st.counts || {};
  const n = (k) => (typeof c[k] === 'number' ? c[k] : 0);
  return {
    done: n('succeeded') + n('cached'),
    running: n('running'),
    retrying: n('retrying'),
    failed: n('failed'),
    cancelled: n('cancelled'),
    total: typeof st.tasks_total === 'number' ? st.tasks_total : 0,
  };
}

function renderDag(steps, {selected, onSelect, avail}) {
  if (!steps.length) return h('div', {class: 'empty'}, 'This run has no steps yet.');
  const {layers, layer} = layoutDag(steps);
  const n = layers.length;
  const H = 50, GY = 16, PAD = 12;
  const GX = n > 6 ? 36 : 56;
  // Boxes shrink (down to 124 px) so that a long chain fits the page width.
  const W = Math.round(Math.max(124, Math.min(184, ((avail || 1300) - PAD * 2 - (n - 1) * GX) / n)));
  const at = new Map();
  const byId = new Map(steps.map((st) => [st.id, st]));
  const maxRows = Math.max(...layers.map((l) => (l ? l.length : 0)));
  const bodyH = maxRows * H + (maxRows - 1) * GY;
  layers.forEach((ls, li) => {
    const colH = ls.length * H + (ls.length - 1) * GY;
    ls.forEach((st, k) => at.set(st.id, {x: PAD + li * (W + GX), y: (bodyH - colH) / 2 + k * (H + GY)}));
  });
  // An edge that skips layers and would pass behind a box is routed above all boxes.
  const blocked = (st, need) => {
    const la = layer.get(need), lb = layer.get(st.id);
    if (lb - la < 2) return false;
    const y1 = at.get(need).y, y2 = at.get(st.id).y;
    const lo = Math.min(y1, y2), hi = Math.max(y1, y2) + H;
    for (let li = la + 1; li < lb; li++) {
      for (const o of layers[li]) {
        const y = at.get(o.id).y;
        if (y < hi && y + H > lo) return true;
      }
    }
    return false;
  };
  const routed = [];
  for (const st of steps) for (const need of st.needs || []) if (byId.has(need) && blocked(st, need)) routed.push(`${need}>${st.id}`);
  const top = PAD + (routed.length ? 10 + routed.length * 7 : 0);
  for (const p of at.values()) p.y += top;
  const height = top + bodyH + PAD;
  const width = PAD * 2 + n * W + (n - 1) * GX;

  const edges = [];
  for (const st of steps) {
    const b = at.get(st.id);
    for (const need of st.needs || []) {
      const a = at.get(need);
      if (!a) continue;
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x - 2, y2 = b.y + H / 2;
      const src = byId.get(need);
      const r = routed.indexOf(`${need}>${st.id}`);
      let d;
      if (r >= 0) {
        const yt = PAD + 4 + r * 7;
        const g = GX / 2;
        d = `M${x1},${y1} C${x1 + g},${y1} ${x1 + g},${yt} ${x1 + GX},${yt} L${x2 - GX},${yt} C${x2 - g},${yt} ${x2 - g},${y2} ${x2},${y2}`;
      } else {
        const dx = Math.max(18, (x2 - x1) / 2);
        d = `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
      }
      edges.push(s('path', {
        class: `edge ${src && src.status === 'succeeded' ? 'done' : ''}`,
        d, 'marker-end': 'url(#dag-arrow)', 'data-edge': `${need}>${st.id}`,
      }));
    }
  }
  const chars = Math.max(8, Math.floor((W - 18) / 7.6));

  const nodes = steps.map((st) => {
    const {x, y} = at.get(st.id);
    const c = stepCounts(st);
    const status = st.status || 'waiting';
    const total = c.total || (st.foreach && st.status === 'waiting' ? '?' : c.total);
    const bits = [];
    if (c.running) bits.push(`${c.running} running`);
    if (c.retrying) bits.push(`${c.retrying} retrying`);
    if (c.failed) bits.push(`${c.failed} failed`);
    if (!bits.length && !['succeeded', 'waiting', 'running'].includes(status)) bits.push(status);
    const subChars = Math.floor((W - 18) / 6.3);
    let sub = [`${c.done}/${total} tasks`, ...bits].join(' · ');
    if (sub.length > subChars) sub = truncate([`${c.done}/${total}`, ...bits].join(' · '), subChars);
    const frac = c.total ? Math.min(1, c.done / c.total) : 0;
    return s('g', {
      class: `node ${stClass(status)} ${selected === st.id ? 'selected' : ''}`,
      'data-step': st.id,
      'data-status': status,
      transform: `translate(${x},${y})`,
      tabindex: 0,
      role: 'button',
      onclick: () => onSelect(st.id),
      onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onSelect(st.id); } },
    },
    s('title', null, `${st.id}: ${status}\n${c.done} of ${c.total} tasks done` +
      (st.foreach ? ' (foreach)' : '') + ((st.needs || []).length ? `\nneeds ${st.needs.join(', ')}` : '') +
      '\nclick: show only its tasks'),
    s('rect', {class: 'box', width: W, height: H, rx: 6, ry: 6}),
    s('rect', {class: 'progress', x: 6, y: H - 7, width: Math.max(0, (W - 12) * frac), height: 3, rx: 1.5}),
    s('text', {class: 'label', x: 9, y: 19}, truncate(st.id, chars - (st.foreach ? 2 : 0)) + (st.foreach ? ' ⁂' : '')),
    s('text', {class: 'sub', x: 9, y: 35}, sub));
  });

  return s('svg', {
    class: 'dag', width, height, viewBox: `0 0 ${width} ${height}`,
    role: 'img', 'aria-label': 'pipeline steps', 'data-testid': 'dag',
  },
  s('defs', null, s('marker', {id: 'dag-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
    s('path', {d: 'M0,0 L10,5 L0,10 z', class: 'arrow'}))),
  s('g', {class: 'edges'}, edges),
  s('g', {class: 'nodes'}, nodes));
}

// ---------------------------------------------------------------- Gantt timeline

const ATTEMPT_LEGEND = ['running', 'succeeded', 'failed', 'retryable', 'timed_out', 'signal', 'preempted', 'cancelled', 'lost'];

function niceStep(spanMs, maxTicks) {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400];
  for (const sec of steps) if (spanMs / (sec * 1000) <= maxTicks) return sec * 1000;
  return Math.ceil(spanMs / maxTicks / 86400000) * 86400000;
}

function fmtAxis(ms) {
  const sec = Math.round(ms / 1000);
  if (sec < 120) return `${sec}s`;
  const m = Math.floor(sec / 60);
  if (m < 120) return sec % 60 ? `${m}m${pad2(sec % 60)}s` : `${m}m`;
  return `${Math.floor(m / 60)}h${pad2(m % 60)}m`;
}

function renderGantt(attempts, run, order, {width, now, runId, stepFilter}) {
  const rows = new Map();
  for (const a of attempts) {
    if (!a.started_at) continue;
    if (stepFilter && taskStep(a.task_id) !== stepFilter) continue;
    if (!rows.has(a.task_id)) rows.set(a.task_id, []);
    rows.get(a.task_id).push(a);
  }
  if (!rows.size) return h('div', {class: 'empty'}, stepFilter ? `No attempts of ${stepFilter} yet.` : 'No attempts yet.');
  const firstStart = (list) => Math.min(...list.map((a) => a.started_at));
  const tasks = [...rows.entries()].sort((a, b) => {
    const oa = order.has(taskStep(a[0])) ? order.get(taskStep(a[0])) : 1e9;
    const ob = order.has(taskStep(b[0])) ? order.get(taskStep(b[0])) : 1e9;
    return (oa - ob) || (firstStart(a[1]) - firstStart(b[1])) || a[0].localeCompare(b[0]);
  });
  let t0 = Infinity, t1 = 0;
  for (const [, list] of tasks) for (const a of list) {
    t0 = Math.min(t0, a.started_at);
    t1 = Math.max(t1, a.finished_at || (a.status === 'running' ? now : a.started_at));
  }
  if (run && run.created_at && run.created_at < t0) t0 = run.created_at;
  if (run && run.status === 'running') t1 = Math.max(t1, now);
  if (run && run.finished_at) t1 = Math.max(t1, run.finished_at);
  if (t1 - t0 < 1000) t1 = t0 + 1000;

  const LABEL = 210, ROW = 20, BAR = 13, AXIS = 22, RPAD = 16;
  const chartW = Math.max(200, width - LABEL - RPAD);
  const height = AXIS + tasks.length * ROW + 6;
  const X = (t) => LABEL + ((t - t0) / (t1 - t0)) * chartW;
  const tick = niceStep(t1 - t0, Math.max(2, Math.floor(chartW / 70)));

  const grid = [];
  for (let t = 0; t <= t1 - t0; t += tick) {
    const x = X(t0 + t);
    grid.push(s('line', {class: 'tick', x1: x, x2: x, y1: AXIS - 4, y2: height}),
      s('text', {class: 'axis', x, y: AXIS - 8, 'text-anchor': t === 0 ? 'start' : 'middle'}, fmtAxis(t)));
  }

  const stripes = [];
  const body = [];
  tasks.forEach(([taskId, list], i) => {
    const y = AXIS + i * ROW;
    if (i % 2) stripes.push(s('rect', {class: 'stripe', x: 0, y, width: LABEL + chartW + RPAD, height: ROW}));
    const latest = list.reduce((a, b) => (b.attempt > a.attempt ? b : a));
    body.push(s('a', {href: logsHash(runId, taskId, 'out')},
      s('text', {class: 'rowlabel', x: 6, y: y + ROW / 2 + 4}, truncate(taskId, 30) + (list.length > 1 ? `  ×${list.length}` : '')),
      s('title', null, `${taskId}: ${list.length} attempt${list.length > 1 ? 's' : ''}, last ${latest.status}`)));
    for (const a of list.sort((p, q) => p.attempt - q.attempt)) {
      const end = a.finished_at || (a.status === 'running' ? now : a.started_at);
      const x = X(a.started_at);
      const w = Math.max(2, X(end) - x);
      const spot = a.capacity_class === 'spot';
      const tip = [`${taskId} attempt ${a.attempt}: ${a.status}`,
        `${a.capacity_class || 'capacity ?'}, ${fmtDur(end - a.started_at)}${a.status === 'running' ? ' so far' : ''}`,
        `${fmtClock(a.started_at)} → ${a.finished_at ? fmtClock(a.finished_at) : 'now'}`];
      if (a.exit_code !== undefined && a.exit_code !== null && a.status !== 'running') tip.push(`exit ${a.exit_code}${a.signal ? `, signal ${a.signal}` : ''}`);
      if (a.max_rss_kb) tip.push(`max RSS ${fmtBytes(a.max_rss_kb * 1024)}, CPU ${fmtDur(a.cpu_ms)}`);
      if (a.message) tip.push(a.message);
      body.push(s('a', {href: logsHash(runId, taskId, 'out', a.attempt)},
        s('g', {class: `bar ${stClass(a.status)} ${spot ? 'spot' : 'ondemand'}`, 'data-attempt': `${taskId}#${a.attempt}`, 'data-status': a.status},
          s('title', null, tip.join('\n')),
          s('rect', {class: 'fill', x, y: y + (ROW - BAR) / 2, width: w, height: BAR, rx: 2}),
          spot ? s('rect', {class: 'hatch', x, y: y + (ROW - BAR) / 2, width: w, height: BAR, rx: 2}) : null)));
    }
  });

  return s('svg', {class: 'gantt', width: LABEL + chartW + RPAD, height, 'data-testid': 'gantt', role: 'img', 'aria-label': 'attempts timeline'},
    s('defs', null, s('pattern', {id: 'spot-hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)'},
      s('rect', {width: 6, height: 6, fill: 'transparent'}),
      s('line', {x1: 0, y1: 0, x2: 0, y2: 6, stroke: 'rgba(255,255,255,0.75)', 'stroke-width': 2.5}))),
    stripes, grid,
    s('line', {class: 'origin', x1: LABEL, x2: LABEL, y1: AXIS - 4, y2: height}),
    body);
}

function ganttLegend(attempts) {
  const present = new Set(attempts.map((a) => a.status));
  const list = ATTEMPT_LEGEND.filter((st) => !['retryable', 'signal'].includes(st) || present.has(st));
  for (const st of present) if (!list.includes(st)) list.push(st);
  return h('div', {class: 'legend'},
    list.map((st) => h('span', {class: 'item'}, h('span', {class: `swatch ${stClass(st)}`}), st.replace(/_/g, ' '))),
    h('span', {class: 'item'}, h('span', {class: 'swatch spot'}), 'spot capacity (hatched, dashed border)'),
    h('span', {class: 'item'}, h('span', {class: 'swatch ondemand'}), 'on-demand (solid)'),
    h('span', {class: 'item muted'}, 'several bars on a row = retries'));
}

// "detect/seg-003" -> "detect"
function taskStep(taskId) {
  const i = String(taskId).indexOf('/');
  return i >= 0 ? taskId.slice(0, i) : taskId;
}

// ---------------------------------------------------------------- run page

function pageRun(view, runId, query, ctx) {
  const state = {detail: null, attempts: [], tasks: [], stepFilter: query.get('step') || '', taskFilter: ''};
  const head = h('div', {class: 'card run-head'}, h('div', {class: 'muted'}, 'loading…'));
  const dagBox = h('div', {class: 'dag-wrap'});
  const dagTitle = h('span', {class: 'muted small'});
  const legendBox = h('div');
  const ganttBox = h('div', {class: 'gantt-wrap'});
  const tasksBox = h('div', {class: 'table-wrap'});
  const taskInfo = h('span', {class: 'muted small'});
  const taskSearch = h('input', {type: 'search', placeholder: 'filter tasks', 'aria-label': 'filter tasks', class: 'small-input'});
  const errBox = h('div');

  view.append(
    h('div', {class: 'crumbs'}, h('a', {href: '#/runs'}, 'Runs'), ' / ', h('span', {class: 'mono'}, runId)),
    errBox, head,
    h('section', {class: 'card'}, h('div', {class: 'section-head'}, h('h2', null, 'Steps'), dagTitle), dagBox),
    h('section', {class: 'card'}, h('div', {class: 'section-head'}, h('h2', null, 'Timeline'), legendBox), ganttBox),
    h('section', {class: 'card'}, h('div', {class: 'section-head'}, h('h2', null, 'Tasks'), taskInfo, h('span', {class: 'spacer'}), taskSearch), tasksBox));

  taskSearch.addEventListener('input', debounce(ctx, () => { state.taskFilter = taskSearch.value.trim(); renderTasks(); }, 150));

  const base = `${API}/runs/${enc(runId)}`;
  async function load() {
    let d, a, t;
    try {
      [d, a, t] = await Promise.all([
        api(base, {signal: ctx.signal}),
        api(`${base}/attempts`, {signal: ctx.signal}),
        api(`${base}/tasks`, {signal: ctx.signal}),
      ]);
    } catch (e) {
      if (!isAbort(e)) replace(errBox, errorBanner(e));
      return;
    }
    if (!ctx.alive) return;
    clear(errBox);
    state.detail = d;
    state.attempts = Array.isArray(a && a.attempts) ? a.attempts : [];
    state.tasks = Array.isArray(t && t.tasks) ? t.tasks : [];
    renderAll();
  }

  const select = (id) => {
    state.stepFilter = state.stepFilter === id ? '' : id;
    history.replaceState(null, '', hashOf(`/runs/${enc(runId)}`, {step: state.stepFilter}));
    renderAll();
  };

  function renderAll() {
    const d = state.detail;
    if (!d) return;
    renderHead(d);
    const steps = Array.isArray(d.steps) ? d.steps : [];
    replace(dagBox, renderDag(steps, {selected: state.stepFilter, onSelect: select, avail: dagBox.clientWidth || view.clientWidth - 30}));
    replace(dagTitle, state.stepFilter
      ? h('span', null, 'showing tasks of ', h('b', null, state.stepFilter), ' · ', h('a', {href: '#', onclick: (e) => { e.preventDefault(); select(state.stepFilter); }}, 'show all'))
      : `${steps.length} step${steps.length === 1 ? '' : 's'} · click a step to filter`);
    renderGanttOnly();
    renderTasks();
  }

  function renderGanttOnly() {
    const d = state.detail;
    if (!d) return;
    const order = stepOrder(Array.isArray(d.steps) ? d.steps : []);
    const width = Math.max(600, ganttBox.clientWidth || view.clientWidth - 24 || 1300);
    replace(legendBox, ganttLegend(state.attempts));
    replace(ganttBox, renderGantt(state.attempts, d.run, order, {width, now: Date.now(), runId, stepFilter: state.stepFilter}));
  }

  function renderHead(d) {
    const r = d.run || {};
    const rec = d.record && typeof d.record === 'object' ? d.record : {};
    const actions = [];
    actions.push(h('a', {class: 'button', href: filesHash(runId, []), 'data-testid': 'open-outputs'}, 'Outputs'));
    if (r.status === 'running') {
      actions.push(h('button', {type: 'button', class: 'danger', onclick: () => postAction('cancel', 'Cancel this run? Its attempts get SIGTERM, then SIGKILL after their grace.')}, 'Cancel run'));
    } else if (['failed', 'cancelled', 'stopped'].includes(r.status)) {
      actions.push(h('button', {type: 'button', onclick: () => postAction('retry', 'Resume this run as a new job? Only what did not succeed reruns.')}, 'Retry (resume)'));
    }
    const kv = [
      ['Pipeline', h('span', {title: r.pipeline_file || ''}, r.pipeline || '—', r.pipeline_file ? h('span', {class: 'muted small'}, '  ', r.pipeline_file) : null)],
      ['Created', fmtTime(r.created_at)],
      ['Finished', r.finished_at ? fmtTime(r.finished_at) : (r.status === 'running' ? 'running…' : '—')],
      ['Duration', r.status === 'running' ? durationEl(r.created_at, 0) : durationEl(r.created_at, r.finished_at)],
      ['Job', r.job_id ? h('a', {class: 'mono', href: hashOf('/queue', {job: r.job_id})}, r.job_id) : h('span', {class: 'muted'}, 'none (not made by a job)')],
      ['Params', paramsEl(r.params)],
    ];
    if (rec.cost !== undefined && rec.cost !== null) kv.push(['Cost', costEl(rec.cost)]);
    if (rec.deadline !== undefined && rec.deadline !== null) kv.push(['Deadline', deadlineEl(rec.deadline)]);
    if (r.message) kv.push(['Message', h('span', {class: 'message'}, r.message)]);
    replace(head,
      h('div', {class: 'run-title'},
        h('h1', {class: 'mono'}, runId), badge(r.status),
        h('span', {class: 'spacer'}), actions),
      h('dl', {class: 'kv'}, kv.map(([k, v]) => [h('dt', null, k), h('dd', null, v)])));
  }

  async function postAction(what, question) {
    if (!window.confirm(question)) return;
    try {
      const r = await api(`${base}/${what}`, {method: 'POST'});
      if (what === 'retry' && r && r.job) {
        toast(`job ${r.job.id} queued`, 'ok');
        location.hash = hashOf('/queue', {job: r.job.id});
      } else {
        toast(what === 'cancel' ? 'cancelling…' : 'done', 'ok');
        refresh();
      }
    } catch (e) {
      if (!isAbort(e)) toast(e.message, 'error');
    }
  }

  function renderTasks() {
    const d = state.detail;
    if (!d) return;
    const order = stepOrder(Array.isArray(d.steps) ? d.steps : []);
    const attemptsBy = new Map();
    for (const a of state.attempts) attemptsBy.set(a.task_id, (attemptsBy.get(a.task_id) || 0) + 1);
    let list = state.tasks.slice();
    if (state.stepFilter) list = list.filter((t) => (t.step || taskStep(t.task_id)) === state.stepFilter);
    if (state.taskFilter) {
      const f = state.taskFilter.toLowerCase();
      list = list.filter((t) => `${t.task_id} ${t.status} ${t.message || ''}`.toLowerCase().includes(f));
    }
    const so = (t) => (order.has(t.step || taskStep(t.task_id)) ? order.get(t.step || taskStep(t.task_id)) : 1e9);
    list.sort((a, b) => (so(a) - so(b)) || String(a.task_id).localeCompare(String(b.task_id), undefined, {numeric: true}));
    const LIMIT = 1000;
    taskInfo.textContent = `${list.length} task${list.length === 1 ? '' : 's'}${list.length > LIMIT ? ` (first ${LIMIT} shown)` : ''}`;
    if (!list.length) { replace(tasksBox, h('div', {class: 'empty'}, 'No tasks yet.')); return; }
    replace(tasksBox, h('table', {class: 'grid', 'data-testid': 'tasks'},
      h('thead', null, h('tr', null, ['Task', 'Status', 'Attempts', 'Started', 'Duration', 'Message', 'Logs'].map((x) => h('th', null, x)))),
      h('tbody', null, list.slice(0, LIMIT).map((t) => h('tr', {'data-task': t.task_id},
        h('td', {class: 'mono'}, h('a', {href: logsHash(runId, t.task_id, 'out')}, t.task_id)),
        h('td', null, badge(t.status)),
        h('td', {class: 'num'}, String(t.attempts !== undefined ? t.attempts : (attemptsBy.get(t.task_id) || 0))),
        h('td', {class: 'nowrap'}, fmtClock(t.started_at)),
        h('td', {class: 'num nowrap'}, t.status === 'running' ? durationEl(t.started_at, 0) : durationEl(t.started_at, t.finished_at)),
        h('td', {class: 'small clip', title: t.message || ''}, truncate(t.message || '', 120)),
        h('td', {class: 'nowrap'}, h('a', {href: logsHash(runId, t.task_id, 'out')}, 'out'), ' · ', h('a', {href: logsHash(runId, t.task_id, 'err')}, 'err')))))));
  }

  const refresh = throttled(ctx, load, 500);
  load();
  // Running bars grow with the clock.
  ctx.setInterval(() => {
    const d = state.detail;
    if (d && d.run && d.run.status === 'running' && state.attempts.some((a) => a.status === 'running')) renderGanttOnly();
  }, 1000);
  let lastWidth = 0;
  const onResize = debounce(ctx, () => { if (view.clientWidth !== lastWidth) { lastWidth = view.clientWidth; renderAll(); } }, 200);
  window.addEventListener('resize', onResize);
  ctx.onDispose(() => window.removeEventListener('resize', onResize));

  return (ev) => {
    if (ev.event === 'reconnect') { refresh(); return; }
    if (['task', 'step', 'run'].includes(ev.event) && ev.data && ev.data.run_id === runId) refresh();
  };
}

function paramsEl(params) {
  if (!params || typeof params !== 'object' || !Object.keys(params).length) return h('span', {class: 'muted'}, 'none');
  return h('span', {class: 'params'}, Object.entries(params).map(([k, v]) => {
    const val = fmtValue(v);
    return h('span', {class: 'param', title: `${k}=${val}`}, h('b', null, k), '=', truncate(val, 80));
  }));
}

// The "cost" of run.json (src/cli/run_cost.cc: actual, currency, all_on_demand,
// monolithic, savings_percent, lost_ms, partial; or {error}); anything else is shown
// generically.
function costEl(cost) {
  if (typeof cost === 'number') return h('span', null, fmtMoney(cost));
  if (typeof cost !== 'object') return h('span', null, String(cost));
  const cur = typeof cost.currency === 'string' ? cost.currency : '';
  if (cost.error) return h('span', {class: 'muted'}, `not computed: ${cost.error}`);
  const totalKey = ['actual', 'total', 'cost', 'amount'].find((k) => typeof cost[k] === 'number');
  const total = totalKey ? cost[totalKey] : (cost.total && typeof cost.total === 'object' && typeof cost.total.amount === 'number' ? cost.total.amount : undefined);
  if (total === undefined) {
    const nums = Object.entries(cost).filter(([, v]) => typeof v === 'number' || typeof v === 'string').slice(0, 8);
    return h('span', null, nums.map(([k, v]) => `${k} ${typeof v === 'number' ? fmtMoney(v) : v}`).join(' · ') || JSON.stringify(cost));
  }
  const parts = [];
  if (typeof cost.all_on_demand === 'number') parts.push(`all on-demand ${fmtMoney(cost.all_on_demand)}`);
  if (typeof cost.monolithic === 'number' && cost.monolithic_instance) {
    const sp = typeof cost.savings_percent === 'number' ? cost.savings_percent : null;
    parts.push(`one ${cost.monolithic_instance} ${fmtMoney(cost.monolithic)}` +
      (sp === null ? '' : ` (${Math.abs(sp).toFixed(0)}% ${sp >= 0 ? 'saved' : 'more'})`));
  }
  if (typeof cost.lost_ms === 'number' && cost.lost_ms > 0) parts.push(`${fmtDur(cost.lost_ms)} lost to preemptions`);
  if (Array.isArray(cost.unbilled_steps) && cost.unbilled_steps.length) parts.push(`not billed: ${cost.unbilled_steps.join(', ')}`);
  return h('span', null,
    h('b', {'data-testid': 'cost'}, `${fmtMoney(total)}${cur ? ' ' + cur : ''}`),
    cost.partial ? ' so far' : '',
    parts.length ? h('span', {class: 'muted'}, ` · ${parts.join(' · ')}`) : null);
}

// The "deadline" of run.json: {at, met, escalated, escalated_at, reason, estimates}.
function deadlineEl(dl) {
  if (typeof dl === 'number') return h('span', null, fmtTime(dl));
  if (typeof dl !== 'object') return h('span', null, String(dl));
  const met = dl.met === true ? badge('succeeded', 'deadline met') : dl.met === false ? badge('failed', 'deadline missed') : badge('pending', 'not decided yet');
  met.textContent = dl.met === true ? 'met' : dl.met === false ? 'missed' : 'pending';
  const est = Array.isArray(dl.estimates) && dl.estimates.length ? dl.estimates[dl.estimates.length - 1] : null;
  return h('span', null, fmtTime(dl.at), ' ', met,
    est && est.finish && dl.met !== true && dl.met !== false ? h('span', {class: 'muted'}, ` · estimated finish ${fmtTime(est.finish)}`) : null,
    dl.escalated ? h('span', {class: 'muted'}, ` · spot work moved to on-demand at ${fmtClock(dl.escalated_at)}${dl.reason ? ': ' + dl.reason : ''}`) : null);
}

// ---------------------------------------------------------------- logs page

function pageLogs(view, runId, query, ctx) {
  const task = query.get('task') || '';
  const stream = query.get('stream') === 'err' ? 'err' : 'out';
  const attempt = query.get('attempt') || '';
  const follow = query.get('follow') === '1';
  const go = (change) => {
    location.hash = hashOf(`/runs/${enc(runId)}/logs`, Object.assign({task, stream, attempt, follow: follow ? '1' : ''}, change));
  };

  const taskSel = h('select', {id: 'log-task', 'aria-label': 'task', onchange: () => go({task: taskSel.value, attempt: ''})},
    h('option', {value: task}, task || 'choose a task…'));
  const attemptSel = h('select', {id: 'log-attempt', 'aria-label': 'attempt', onchange: () => go({attempt: attemptSel.value})},
    h('option', {value: ''}, 'latest attempt'));
  const followBox = h('input', {type: 'checkbox', id: 'log-follow', checked: follow, onchange: () => go({follow: followBox.checked ? '1' : ''})});
  const status = h('span', {class: 'muted small', 'data-testid': 'log-status'});
  const pre = h('pre', {class: 'log', 'data-testid': 'log'});
  const tabs = h('span', {class: 'tabs'},
    ['out', 'err'].map((st) => h('a', {href: hashOf(`/runs/${enc(runId)}/logs`, {task, stream: st, attempt, follow: follow ? '1' : ''}), class: st === stream ? 'active' : ''}, `std${st}`)));

  view.append(
    h('div', {class: 'crumbs'}, h('a', {href: '#/runs'}, 'Runs'), ' / ', h('a', {class: 'mono', href: runHash(runId)}, runId), ' / logs'),
    h('div', {class: 'card'},
      h('div', {class: 'toolbar'}, taskSel, tabs, attemptSel,
        h('label', {class: 'check'}, followBox, ' follow'),
        h('button', {type: 'button', onclick: () => route()}, 'Reload'),
        task ? h('button', {type: 'button', onclick: downloadLog}, 'Download') : null,
        h('span', {class: 'spacer'}), status),
      pre));

  const base = `${API}/runs/${enc(runId)}`;
  // Task and attempt pickers.
  Promise.all([api(`${base}/tasks`, {signal: ctx.signal}), api(`${base}/attempts`, {signal: ctx.signal})]).then(([t, a]) => {
    if (!ctx.alive) return;
    const tasks = (t && t.tasks) || [];
    replace(taskSel, task ? null : h('option', {value: ''}, 'choose a task…'),
      tasks.map((x) => h('option', {value: x.task_id, selected: x.task_id === task}, `${x.task_id} (${x.status})`)));
    if (task && !tasks.some((x) => x.task_id === task)) taskSel.prepend(h('option', {value: task, selected: true}, task));
    const mine = ((a && a.attempts) || []).filter((x) => x.task_id === task).sort((p, q) => p.attempt - q.attempt);
    replace(attemptSel, h('option', {value: ''}, 'latest attempt'),
      mine.map((x) => h('option', {value: String(x.attempt), selected: String(x.attempt) === attempt},
        `attempt ${x.attempt}: ${x.status}${x.capacity_class === 'spot' ? ' (spot)' : ''}`)));
  }).catch((e) => { if (!isAbort(e)) status.textContent = e.message; });

  if (!task) {
    pre.textContent = 'Choose a task.';
    return null;
  }

  const logUrl = (extra) => {
    const p = new URLSearchParams({task, stream});
    if (attempt) p.set('attempt', attempt);
    for (const [k, v] of Object.entries(extra)) p.set(k, v);
    return `${base}/logs?${p}`;
  };

  async function downloadLog() {
    try {
      const res = await api(logUrl({}), {raw: true});
      saveBlob(await res.blob(), `${runId}.${task.replace(/\//g, '.')}${attempt ? '.' + attempt : ''}.${stream}`);
    } catch (e) { if (!isAbort(e)) toast(e.message, 'error'); }
  }

  const nearBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;

  async function loadOnce() {
    status.textContent = 'loading…';
    try {
      const text = await api(logUrl({tail: '500'}), {signal: ctx.signal, headers: {Accept: 'text/plain'}});
      if (!ctx.alive) return;
      pre.textContent = typeof text === 'string' ? text : JSON.stringify(text, null, 2);
      if (!pre.textContent) pre.appendChild(h('span', {class: 'muted'}, '(empty)'));
      status.textContent = 'last 500 lines';
      pre.scrollTop = pre.scrollHeight;
    } catch (e) {
      if (isAbort(e)) return;
      if (e instanceof HttpError && e.status === 404 && /^no log yet/.test(e.message)) {
        // The log file is created on the attempt's first byte.
        status.textContent = 'no output';
        replace(pre, h('span', {class: 'muted'}, `(no output on std${stream} for this attempt${follow ? '' : ' yet'})`));
        return;
      }
      status.textContent = '';
      replace(pre, errorBanner(e));
    }
  }

  // Follow: SSE `log` events append lines, `end` stops. Lines are batched per frame.
  async function startFollow() {
    clear(pre);
    let pending = [];
    let frame = 0;
    let lines = 0;
    const flush = () => {
      frame = 0;
      if (!pending.length) return;
      const stick = nearBottom();
      pre.appendChild(document.createTextNode(pending.join('')));
      pending = [];
      if (pre.childNodes.length > 400) pre.normalize();
      if (stick) pre.scrollTop = pre.scrollHeight;
    };
    const add = (text) => {
      pending.push(text);
      if (!frame) frame = requestAnimationFrame(flush);
    };
    let ended = false;
    status.textContent = 'connecting…';
    try {
      await readSSE(logUrl({tail: '500', follow: '1'}), {
        signal: ctx.signal,
        onOpen: () => { status.textContent = 'following…'; },
        onEvent: (ev) => {
          if (ev.event === 'log' || ev.event === 'message') { add(ev.data + '\n'); lines++; }
          else if (ev.event === 'end') {
            ended = true;
            let which = '';
            try { const d = JSON.parse(ev.data); if (d && d.attempt) which = ` ${d.attempt}`; } catch (e) { /* no data */ }
            add(`── end of attempt${which} ──\n`);
          }
        },
        onPlainText: (text) => { add(text); ended = true; },
      });
    } catch (e) {
      if (isAbort(e)) return;
      flush();
      status.textContent = '';
      pre.appendChild(errorBanner(e));
    }
    if (!ctx.alive) return;
    flush();
    replace(status, ended ? `attempt ended · ${lines} lines streamed` : h('span', null, 'stream closed · ', h('a', {href: '#', onclick: (e) => { e.preventDefault(); startFollow(); }}, 'follow again')));
  }

  if (follow) startFollow(); else loadOnce();
  return null;
}

// ---------------------------------------------------------------- outputs browser

const IMAGE_EXT = {png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', svg: 'image/svg+xml', bmp: 'image/bmp', avif: 'image/avif'};
const VIDEO_EXT = {mp4: 'video/mp4', m4v: 'video/mp4', webm: 'video/webm', ogv: 'video/ogg', mov: 'video/quicktime'};
const TEXT_EXT = new Set(['txt', 'log', 'csv', 'tsv', 'yaml', 'yml', 'md', 'out', 'err', 'ini', 'toml', 'xml', 'py', 'sh', 'cfg', 'conf', 'srt', 'vtt', 'ndjson', 'jsonl', 'c', 'cc', 'h', 'js', 'mjs', 'css', 'sql', 'r', 'tex', 'diff', 'patch']);
const TEXT_LIMIT = 8 << 20;
const IMAGE_LIMIT = 64 << 20;
const VIDEO_LIMIT = 512 << 20;

function extOf(name) {
  const m = /\.([A-Za-z0-9]+)$/.exec(name);
  return m ? m[1].toLowerCase() : '';
}

function artifactUrl(runId, segs, download) {
  return `${API}/runs/${enc(runId)}/artifacts/${segs.map(enc).join('/')}${download ? '?download=1' : ''}`;
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', {href: url, download: name, style: {display: 'none'}});
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
}

async function downloadArtifact(runId, segs) {
  try {
    const res = await api(artifactUrl(runId, segs, true), {raw: true});
    saveBlob(await res.blob(), segs[segs.length - 1] || runId);
  } catch (e) {
    if (!isAbort(e)) toast(e.message, 'error');
  }
}

function isFolder(x) {
  return x && typeof x === 'object' && Array.isArray(x.entries);
}

function pageFiles(view, runId, segs, ctx) {
  const crumbs = h('div', {class: 'crumbs'});
  const listBox = h('div', {class: 'files-list'});
  const previewBox = h('div', {class: 'files-preview'});
  const errBox = h('div');
  view.append(crumbs, errBox,
    h('div', {class: 'files card', 'data-testid': 'outputs'}, listBox, previewBox));
  const blobUrls = [];
  ctx.onDispose(() => blobUrls.forEach((u) => URL.revokeObjectURL(u)));

  let steps = new Map();

  function renderCrumbs(folderSegs, file) {
    const parts = [h('a', {href: '#/runs'}, 'Runs'), ' / ',
      h('a', {class: 'mono', href: runHash(runId), title: 'the run'}, runId), ' / ',
      h('a', {href: filesHash(runId, []), 'data-crumb': ''}, 'outputs')];
    folderSegs.forEach((seg, i) => {
      parts.push(' / ');
      const isStep = i === 0 && steps.has(seg);
      parts.push(h('a', {href: filesHash(runId, folderSegs.slice(0, i + 1)), class: isStep ? 'step-crumb' : '', 'data-crumb': seg}, seg));
      if (isStep) parts.push(' ', badge(steps.get(seg).status || 'waiting'));
    });
    if (file) parts.push(' / ', h('b', null, file));
    replace(crumbs, parts);
  }

  function renderListing(folderSegs, folder, selected) {
    const atRoot = folderSegs.length === 0;
    const entries = (folder.entries || []).slice();
    const order = stepOrder([...steps.values()]);
    const rank = (e) => {
      if (atRoot && e.type === 'dir' && steps.has(e.name)) return 0;
      if (e.name.startsWith('_')) return 3;
      return e.type === 'dir' ? 1 : 2;
    };
    entries.sort((a, b) => (rank(a) - rank(b)) ||
      ((order.get(a.name) ?? 0) - (order.get(b.name) ?? 0)) ||
      a.name.localeCompare(b.name, undefined, {numeric: true}));
    const rows = [];
    if (!atRoot) {
      rows.push(h('tr', {class: 'up'}, h('td', {colspan: 3}, h('a', {href: filesHash(runId, folderSegs.slice(0, -1))}, '↰ ..'))));
    }
    for (const e of entries) {
      const isDir = e.type === 'dir';
      const isStep = atRoot && isDir && steps.has(e.name);
      const internal = e.name.startsWith('_');
      rows.push(h('tr', {
        'data-entry': e.name, 'data-type': isDir ? 'dir' : 'file',
        'data-step-folder': isStep ? e.name : null,
        class: `${isStep ? 'step-folder' : ''} ${internal ? 'internal' : ''} ${selected === e.name ? 'selected' : ''}`,
      },
      h('td', {class: 'name'},
        h('a', {href: filesHash(runId, [...folderSegs, e.name])},
          h('span', {class: `icon ${isDir ? 'dir' : 'file'}`, 'aria-hidden': 'true'}, isDir ? '▸' : '·'),
          e.name + (isDir ? '/' : '')),
        isStep ? [' ', h('span', {class: 'tag'}, 'step'), ' ', badge(steps.get(e.name).status || 'waiting')] : null,
        internal ? [' ', h('span', {class: 'tag muted'}, 'internal')] : null),
      h('td', {class: 'num small'}, isDir ? '' : fmtBytes(e.size)),
      h('td', {class: 'small nowrap muted'}, fmtTime(e.mtime))));
    }
    replace(listBox,
      h('div', {class: 'section-head'}, h('h2', null, atRoot ? 'Outputs' : folderSegs[folderSegs.length - 1] + '/'),
        h('span', {class: 'muted small'}, `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`),
        atRoot ? h('span', {class: 'muted small'}, ' · steps first') : null),
      entries.length || !atRoot ? h('table', {class: 'grid files-table'}, h('tbody', null, rows)) : h('div', {class: 'empty'}, 'No outputs yet.'));
  }

  async function preview(fileSegs, entry) {
    const name = fileSegs[fileSegs.length - 1];
    const ext = extOf(name);
    const size = entry && typeof entry.size === 'number' ? entry.size : null;
    const body = h('div', {class: 'preview-body'}, h('div', {class: 'muted'}, 'loading…'));
    replace(previewBox,
      h('div', {class: 'preview-head'},
        h('b', {class: 'mono'}, name),
        h('span', {class: 'muted small'}, [size !== null ? fmtBytes(size) : '', entry && entry.mtime ? fmtTime(entry.mtime) : ''].filter(Boolean).join(' · ')),
        h('span', {class: 'spacer'}),
        h('button', {type: 'button', class: 'primary', 'data-testid': 'download', onclick: () => downloadArtifact(runId, fileSegs)}, 'Download')),
      body);
    const tooBig = (limit) => size !== null && size > limit;
    const show = (...c) => { if (ctx.alive) replace(body, ...c); };
    const fetchBlob = async (mime) => {
      const res = await api(artifactUrl(runId, fileSegs, false), {raw: true, signal: ctx.signal});
      const b = await res.blob();
      return mime ? new Blob([b], {type: mime}) : b;
    };
    const objectUrl = (blob) => { const u = URL.createObjectURL(blob); blobUrls.push(u); return u; };
    try {
      if (IMAGE_EXT[ext]) {
        if (tooBig(IMAGE_LIMIT)) return show(tooLarge(size));
        const url = objectUrl(await fetchBlob(IMAGE_EXT[ext]));
        return show(h('div', {class: 'image-box'}, h('img', {src: url, alt: name, 'data-testid': 'preview-image'})));
      }
      if (VIDEO_EXT[ext]) {
        if (tooBig(VIDEO_LIMIT)) return show(tooLarge(size));
        const url = objectUrl(await fetchBlob(VIDEO_EXT[ext]));
        return show(h('video', {src: url, controls: true, preload: 'metadata', 'data-testid': 'preview-video'}));
      }
      if (tooBig(TEXT_LIMIT)) return show(tooLarge(size));
      const blob = await fetchBlob();
      if (ext === 'html' || ext === 'htm') {
        // An opaque-origin sandbox without scripts: the page cannot reach the token.
        const text = await blob.text();
        return show(h('div', {class: 'muted small'}, 'HTML shown sandboxed, without scripts; relative links to other outputs do not load here (use Download).'),
          h('iframe', {class: 'html-frame', 'data-testid': 'preview-html', title: name, sandbox: '', referrerpolicy: 'no-referrer', srcdoc: text}));
      }
      const head = new Uint8Array(await blob.slice(0, 4096).arrayBuffer());
      const binary = head.includes(0) && !TEXT_EXT.has(ext) && ext !== 'json';
      if (binary) return show(h('div', {class: 'empty'}, `Binary file (${fmtBytes(blob.size)}): no preview. Use Download.`));
      let text = await blob.text();
      let kind = 'text';
      if (ext === 'json' || (!ext && /^\s*[{[]/.test(text))) {
        try { text = JSON.stringify(JSON.parse(text), null, 2); kind = 'json'; } catch (e) { /* shown as is */ }
      }
      return show(h('pre', {class: `file-text ${kind}`, 'data-testid': 'preview-text'}, text || '(empty file)'));
    } catch (e) {
      if (!isAbort(e)) show(errorBanner(e));
    }
    return undefined;
  }

  function tooLarge(size) {
    return h('div', {class: 'empty'}, `Too large to preview here (${fmtBytes(size)}). Use Download.`);
  }

  async function listing(folderSegs) {
    const r = await api(artifactUrl(runId, folderSegs, false), {signal: ctx.signal, headers: {Accept: 'application/json'}});
    if (!isFolder(r)) throw new HttpError(0, 'not a folder');
    return r;
  }

  async function load() {
    const detail = api(`${API}/runs/${enc(runId)}`, {signal: ctx.signal}).then((d) => {
      steps = new Map(((d && d.steps) || []).map((st) => [st.id, st]));
    }).catch(() => {});
    try {
      if (!segs.length) {
        const [folder] = await Promise.all([listing([]), detail]);
        if (!ctx.alive) return;
        renderCrumbs([], null);
        renderListing([], folder, null);
        replace(previewBox, h('div', {class: 'empty'}, 'Pick a file to see it here. Folders marked ', h('span', {class: 'tag'}, 'step'), ' hold each step\'s committed outputs.'));
        return;
      }
      // Is the last segment a file or a folder? Its parent's listing says.
      const parentSegs = segs.slice(0, -1);
      const name = segs[segs.length - 1];
      const [parent] = await Promise.all([listing(parentSegs), detail]);
      if (!ctx.alive) return;
      const entry = (parent.entries || []).find((e) => e.name === name);
      if (entry && entry.type !== 'dir') {
        renderCrumbs(parentSegs, name);
        renderListing(parentSegs, parent, name);
        preview(segs, entry);
      } else {
        const folder = await listing(segs);
        if (!ctx.alive) return;
        renderCrumbs(segs, null);
        renderListing(segs, folder, null);
        replace(previewBox, h('div', {class: 'empty'}, 'Pick a file to see it here.'));
      }
    } catch (e) {
      if (!isAbort(e)) replace(errBox, errorBanner(e));
    }
  }

  load();
  return null;
}

// ---------------------------------------------------------------- queue page

const JOB_SECTIONS = [
  {state: 'pending', title: 'Pending', open: true},
  {state: 'leased', title: 'Leased (running)', open: true},
  {state: 'dead', title: 'Dead-letter', open: true},
  {state: 'cancelled', title: 'Cancelled', open: false},
  {state: 'succeeded', title: 'Succeeded', open: false},
];

function pageQueue(view, query, ctx) {
  const highlight = query.get('job') || '';
  const statusBox = h('div', {class: 'queue-status'});
  const boxes = {};
  const counts = {};
  view.append(h('div', {class: 'page-head'}, h('h1', null, 'Queue'), statusBox));
  for (const sec of JOB_SECTIONS) {
    boxes[sec.state] = h('div', {class: 'table-wrap'}, h('div', {class: 'muted'}, 'loading…'));
    counts[sec.state] = h('span', {class: 'count'});
    const summary = h('summary', null, h('h2', null, sec.title), ' ', counts[sec.state]);
    view.append(h('details', {class: `card queue-section q-${sec.state}`, open: sec.open, 'data-queue': sec.state}, summary, boxes[sec.state]));
  }

  async function retry(job) {
    try {
      await api(`${API}/jobs/${enc(job.id)}/retry`, {method: 'POST'});
      toast(`job ${job.id} back to pending`, 'ok');
      refresh();
    } catch (e) {
      if (!isAbort(e)) toast(e.message, 'error');
    }
  }

  async function cancelJob(job) {
    if (!confirm(`Cancel job ${job.id}?` + (job.state === 'leased' ? ' Its run is cancelled: its attempts get SIGTERM, then SIGKILL after their grace.' : ''))) return;
    try {
      await api(`${API}/jobs/${enc(job.id)}/cancel`, {method: 'POST'});
      toast(`job ${job.id} cancelled`, 'ok');
      refresh();
    } catch (e) {
      if (!isAbort(e)) toast(e.message, 'error');
    }
  }

  function jobsTable(jobs, state) {
    if (!jobs.length) return h('div', {class: 'empty'}, 'none');
    const canRetry = state === 'dead' || state === 'cancelled';
    const canCancel = state === 'pending' || state === 'leased';
    return h('table', {class: 'grid'},
      h('thead', null, h('tr', null, ['Job', 'Key', 'Pipeline', 'Params', 'Priority', 'Deadline', 'Attempts', 'Run', 'Created', 'Updated', 'Message', ''].map((x) => h('th', null, x)))),
      h('tbody', null, jobs.map((j) => h('tr', {'data-job': j.id, class: j.id === highlight ? 'highlight' : ''},
        h('td', {class: 'mono small nowrap'}, j.id),
        h('td', {class: 'small'}, j.key || h('span', {class: 'muted'}, '—')),
        h('td', {class: 'nowrap', title: j.pipeline || ''}, basename(j.pipeline)),
        h('td', {class: 'small clip', title: fmtParams(j.params)}, truncate(fmtParams(j.params), 60)),
        h('td', {class: 'num'}, String(j.priority ?? '')),
        h('td', {class: 'nowrap small'}, typeof j.deadline === 'number' ? (j.deadline ? fmtTime(j.deadline) : '—') : String(j.deadline || '—')),
        h('td', {class: 'num'}, `${j.attempts ?? 0}/${j.max_attempts ?? '?'}`),
        h('td', {class: 'mono small'}, j.run_id ? h('a', {href: runHash(j.run_id)}, j.run_id) : h('span', {class: 'muted'}, '—')),
        h('td', {class: 'nowrap small'}, fmtTime(j.created_at)),
        h('td', {class: 'nowrap small'}, fmtTime(j.updated_at)),
        h('td', {class: 'small clip', title: j.message || ''}, truncate(j.message || '', 80)),
        h('td', null, canRetry ? h('button', {type: 'button', class: 'small-button', 'data-retry': j.id, onclick: () => retry(j)}, 'Retry')
          : canCancel ? h('button', {type: 'button', class: 'small-button', 'data-cancel': j.id, onclick: () => cancelJob(j)}, 'Cancel') : null)))));
  }

  async function load() {
    const calls = JOB_SECTIONS.map((sec) => api(`${API}/jobs?state=${sec.state}&limit=100`, {signal: ctx.signal})
      .then((r) => ({sec, jobs: (r && r.jobs) || []}), (e) => ({sec, error: e})));
    const statusCall = api(`${API}/status`, {signal: ctx.signal}).catch((e) => ({error: e}));
    const [st, ...lists] = await Promise.all([statusCall, ...calls]);
    if (!ctx.alive) return;
    if (st.error) {
      if (isAbort(st.error)) return;
      replace(statusBox, errorBanner(st.error));
    } else {
      const q = st.queue || {};
      replace(statusBox,
        JOB_SECTIONS.map((sec) => h('span', {class: `stat ${stClass(sec.state)}`, 'data-count': sec.state},
          h('b', null, String(q[sec.state] ?? 0)), ' ', sec.state === 'dead' ? 'dead' : sec.state)),
        h('span', {class: 'stat'}, h('b', null, `${st.runs_active ?? 0}/${st.max_runs ?? '?'}`), ' runs active'),
        st.draining ? h('span', {class: 'badge st-cancelled'}, 'draining') : null);
      for (const sec of JOB_SECTIONS) counts[sec.state].textContent = String(q[sec.state] ?? '');
    }
    for (const {sec, jobs, error} of lists) {
      if (error) { if (!isAbort(error)) replace(boxes[sec.state], errorBanner(error)); continue; }
      replace(boxes[sec.state], jobsTable(jobs, sec.state));
      if (!counts[sec.state].textContent) counts[sec.state].textContent = String(jobs.length);
    }
  }

  const refresh = throttled(ctx, load, 500);
  load().then(() => {
    if (!highlight || !ctx.alive) return;
    const row = view.querySelector(`tr[data-job="${CSS.escape(highlight)}"]`);
    if (!row) return;
    const det = row.closest('details');
    if (det) det.open = true;
    row.scrollIntoView({block: 'center'});
  });
  return (ev) => {
    if (ev.event === 'job' || ev.event === 'reconnect') refresh();
  };
}

// ---------------------------------------------------------------- submit page

// "k=v" lines (blank lines and # comments skipped) or a JSON object.
function parseParams(text) {
  const t = text.trim();
  if (!t) return {};
  if (t.startsWith('{')) {
    let v;
    try { v = JSON.parse(t); } catch (e) { throw new Error(`params: bad JSON (${e.message})`); }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('params: the JSON must be an object');
    return v;
  }
  const out = {};
  t.split(/\r?\n/).forEach((line, i) => {
    const l = line.trim();
    if (!l || l.startsWith('#')) return;
    const eq = l.indexOf('=');
    if (eq <= 0) throw new Error(`params line ${i + 1}: expected k=v`);
    out[l.slice(0, eq).trim()] = l.slice(eq + 1).trim();
  });
  return out;
}

function pageSubmit(view, query, ctx) {
  const field = (label, input, hint) => h('label', {class: 'field'}, h('span', {class: 'flabel'}, label), input, hint ? h('span', {class: 'hint'}, hint) : null);
  const pipeline = h('input', {id: 'submit-pipeline', type: 'text', required: true, placeholder: '/path/to/pipeline.yaml', value: query.get('pipeline') || '', autocomplete: 'off'});
  const params = h('textarea', {id: 'submit-params', rows: 6, placeholder: 'video=/data/in/match1.mp4\nsegment_seconds=20\n\nor a JSON object: {"video": "/data/in/match1.mp4"}', spellcheck: 'false'});
  const priority = h('input', {id: 'submit-priority', type: 'number', step: 1, placeholder: '0'});
  const deadline = h('input', {id: 'submit-deadline', type: 'text', placeholder: '07:00, 6h or epoch ms', autocomplete: 'off'});
  const key = h('input', {id: 'submit-key', type: 'text', placeholder: 'idempotency key (optional)', autocomplete: 'off'});
  const maxAttempts = h('input', {id: 'submit-max-attempts', type: 'number', min: 1, step: 1, placeholder: '3'});
  const button = h('button', {id: 'submit-button', type: 'submit', class: 'primary'}, 'Submit job');
  const formErr = h('div');
  const result = h('div', {class: 'submit-result'});

  const form = h('form', {class: 'card submit-form', onsubmit: (e) => { e.preventDefault(); submit(); }},
    h('h1', null, 'Submit a job'),
    field('Pipeline file', pipeline, 'a path on the server\'s machine'),
    field('Params', params, 'k=v lines, or a JSON object'),
    h('div', {class: 'row3'},
      field('Priority', priority, 'higher runs first'),
      field('Deadline', deadline, '"07:00", "6h" or ms since the epoch'),
      field('Max attempts', maxAttempts, 'runs before dead-letter')),
    field('Key', key, 'a second submission with the same key returns the first job'),
    formErr,
    h('div', {class: 'row'}, button));
  view.append(h('div', {class: 'submit-layout'}, form, result));

  let job = null;
  let pollTimer = null;

  function renderResult(created) {
    if (!job) return;
    const runLink = job.run_id
      ? h('a', {href: runHash(job.run_id), 'data-testid': 'submitted-run', class: 'button primary'}, `Open run ${job.run_id} →`)
      : h('span', {class: 'muted'}, 'waiting for a server to start its run…');
    replace(result, h('div', {class: 'card'},
      h('h2', null, created === false ? 'Job already known (same key)' : 'Job submitted'),
      h('dl', {class: 'kv'},
        h('dt', null, 'Job'), h('dd', null, h('code', {'data-testid': 'submitted-job'}, job.id)),
        h('dt', null, 'State'), h('dd', null, badge(job.state)),
        h('dt', null, 'Attempts'), h('dd', null, `${job.attempts ?? 0}/${job.max_attempts ?? '?'}`),
        job.message ? [h('dt', null, 'Message'), h('dd', null, job.message)] : null,
        h('dt', null, 'Run'), h('dd', null, runLink)),
      h('p', null, h('a', {href: hashOf('/queue', {job: job.id})}, 'see it in the queue'))));
  }

  let lastCreated;
  async function poll() {
    if (!job || !ctx.alive) return;
    try {
      const r = await api(`${API}/jobs/${enc(job.id)}`, {signal: ctx.signal});
      if (r && r.job && ctx.alive) { job = r.job; renderResult(lastCreated); }
    } catch (e) { /* the event stream may still bring it */ }
    if (job && !job.run_id && ctx.alive) pollTimer = ctx.setTimeout(poll, 2000);
  }

  async function submit() {
    clear(formErr);
    const body = {pipeline: pipeline.value.trim()};
    try {
      body.params = parseParams(params.value);
    } catch (e) {
      replace(formErr, errorBanner(e));
      return;
    }
    if (priority.value.trim()) body.priority = Number(priority.value);
    const dl = deadline.value.trim();
    if (dl) body.deadline = /^\d+$/.test(dl) ? Number(dl) : dl;
    if (key.value.trim()) body.key = key.value.trim();
    if (maxAttempts.value.trim()) body.max_attempts = Number(maxAttempts.value);
    button.disabled = true;
    try {
      const r = await api(`${API}/jobs`, {method: 'POST', body});
      if (!ctx.alive) return;
      job = r.job;
      lastCreated = r.created;
      renderResult(r.created);
      clearTimeout(pollTimer);
      if (!job.run_id) pollTimer = ctx.setTimeout(poll, 1000);
    } catch (e) {
      if (!isAbort(e)) replace(formErr, errorBanner(e));
    } finally {
      button.disabled = false;
    }
  }

  pipeline.focus();
  return (ev) => {
    if (!job) return;
    if (ev.event === 'job' && ev.data && ev.data.id === job.id) {
      job = Object.assign({}, job, ev.data);
      renderResult(lastCreated);
    } else if (ev.event === 'reconnect') poll();
  };
}

// ---------------------------------------------------------------- start

// Durations of running things tick once a second.
setInterval(() => {
  const now = Date.now();
  for (const el of document.querySelectorAll('[data-since]')) el.textContent = fmtDur(now - Number(el.dataset.since));
}, 1000);

function start() {
  takeTokenFromHash();
  if (!location.hash) history.replaceState(null, '', '#/runs');
  document.getElementById('forget-token').addEventListener('click', () => {
    if (!window.confirm('Forget the token stored in this browser?')) return;
    forgetToken();
    live.stop();
    route();
  });
  window.addEventListener('hashchange', () => {
    if (/[#?&]token=/.test(location.hash)) {
      takeTokenFromHash();
      live.stop();
    }
    route();
  });
  live.setState('offline');
  route();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
