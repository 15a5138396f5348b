// realstat supervisor wallboard. Plain JavaScript, no build step, served from the binary.
//
// The access key and secret key are kept in this tab's sessionStorage and sign every request
// here, with WebCrypto, exactly as docs/api.md ("C2 signature") says, quirk included: the second
// HMAC is keyed with the 64-character hex TEXT of the first. The live stream is read with
// fetch + ReadableStream, since EventSource cannot send an Authorization header.
'use strict';

const BASE = '/rest/cmsapp/v1/openapi/fromisales/';
const STREAM = BASE + 'realstatistic/stream';
const BREAKDOWN = BASE + 'realstatistic/breakdown';
const STORE = 'realstat.wallboard';
const COUNTS = [
  ['totalCount', 'calls today'], ['succCount', 'answered'], ['failCount', 'failed'],
  ['compCount', 'ended'], ['waitCount', 'waiting'], ['execCount', 'in progress'],
];
const RATES = [['succRate', 'answered'], ['compRate', 'completed']];
const RECONNECT_MS = 2000;
const CHART_EVERY_MS = 30000;

// ---- C2 signing (docs/api.md) -------------------------------------------------------------

const utf8 = new TextEncoder();

function isUnreserved(b) {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) ||
    b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
}

/** Percent-encodes every byte but A-Z a-z 0-9 - . _ ~ as %XX (upper-case hex). */
function normalize(bytes) {
  let out = '';
  for (const b of bytes) {
    out += isUnreserved(b) ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** Form decoding as the server does it: '+' is a space, %XX a byte, a bad escape stays. */
function formDecode(text) {
  const b = utf8.encode(text);
  const hex = (c) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
  const out = [];
  for (let i = 0; i < b.length;) {
    if (b[i] === 0x2b) { out.push(0x20); i += 1; }
    else if (b[i] === 0x25 && i + 2 < b.length && hex(b[i + 1]) && hex(b[i + 2])) {
      out.push(parseInt(String.fromCharCode(b[i + 1], b[i + 2]), 16)); i += 3;
    } else { out.push(b[i]); i += 1; }
  }
  return Uint8Array.from(out);
}

function canonicalQuery(raw) {
  if (!raw) return null;
  const params = raw.split('&').filter((p) => p !== '').map((p) => {
    const i = p.indexOf('=');
    const [k, v] = i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
    return normalize(formDecode(k)) + '=' + normalize(formDecode(v));
  });
  if (params.length === 0) return null;
  params.sort();
  return params.join('&');
}

async function hmacHex(keyBytes, message) {
  const key = await crypto.subtle.importKey('raw', keyBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = await crypto.subtle.sign('HMAC', key, utf8.encode(message));
  return Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The Authorization value of a request; `headers` are the signed ones, by lower-case name. */
async function sign({ ak, sk, timestamp, method, path, query, headers, body }) {
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  const prefix = `auth-v2/${ak}/${timestamp}/${signedHeaders}`;
  const signingKey = await hmacHex(utf8.encode(sk), prefix);
  const lines = [method, path];
  const cq = canonicalQuery(query);
  if (cq !== null) lines.push(cq);
  lines.push(signedHeaders);
  lines.push(...names.map((n) => normalize(utf8.encode(n)) + ':' + normalize(utf8.encode(headers[n]))).sort());
  lines.push(normalize(utf8.encode(body || '')));
  // The vendor's quirk: the key of the second HMAC is the hex text of the first.
  const signature = await hmacHex(utf8.encode(signingKey), lines.join('\n'));
  return `${prefix}/${signature}`;
}

function timestamp() {
  return new Date().toISOString().slice(0, 19) + 'Z';
}

/** Signs for this page's own host, over `host` only (the header the browser always sends). */
function authorization(cfg, method, path, query, body) {
  return sign({ ak: cfg.ak, sk: cfg.sk, timestamp: timestamp(), method, path, query,
    headers: { host: location.host }, body });
}

// ---- settings ------------------------------------------------------------------------------

function loadSettings() {
  try { return JSON.parse(sessionStorage.getItem(STORE)); } catch { return null; }
}

function parseForm(form) {
  const f = new FormData(form);
  const ids = String(f.get('taskIds')).split(/[\s,]+/).filter((t) => t !== '');
  const cfg = { ak: String(f.get('ak')).trim(), sk: String(f.get('sk')), ccId: String(f.get('ccId')).trim(),
    vdn: String(f.get('vdn')).trim(), taskIds: ids };
  if (!/^[0-9]+$/.test(cfg.vdn)) throw new Error('VDN: digits only');
  if (cfg.ccId !== '' && !/^[0-9]+$/.test(cfg.ccId)) throw new Error('Call center: digits only');
  if (ids.length === 0 || ids.length > 100) throw new Error('Task ids: 1 to 100');
  if (!ids.every((t) => /^[0-9]{1,30}$/.test(t))) throw new Error('Task ids: 1 to 30 digits each');
  return cfg;
}

function streamQuery(cfg) {
  const parts = cfg.ccId ? [`ccId=${cfg.ccId}`] : [];
  parts.push(`vdn=${cfg.vdn}`, ...cfg.taskIds.map((t) => `taskId=${t}`));
  return parts.join('&');
}

// ---- tiles ---------------------------------------------------------------------------------

const tiles = new Map();
let selected = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

function percent(text) {
  const n = parseFloat(text);
  return Number.isFinite(n) ? n : 0;
}

function canonicalId(id) {
  return id.replace(/^0+(?=[0-9])/, '');
}

function tileFor(taskId) {
  let tile = tiles.get(taskId);
  if (tile) return tile;
  tile = el('article', { class: 'tile', 'data-task': taskId },
    el('h2', {}, `Task ${taskId}`),
    el('div', { class: 'rates' }, ...RATES.map(([f, label]) =>
      el('div', { class: 'rate', 'data-rate': f }, el('b', { 'data-field': f }, '–'), el('small', {}, label)))),
    el('dl', { class: 'counts' }, ...COUNTS.map(([f, label]) =>
      el('div', {}, el('dt', {}, label), el('dd', { 'data-field': f }, '–')))));
  tile.addEventListener('click', () => select(taskId));
  document.getElementById('tiles').append(tile);
  tiles.set(taskId, tile);
  return tile;
}

function render(id, row) {
  const tile = tileFor(row.taskId);
  for (const [f] of RATES) {
    const box = tile.querySelector(`[data-rate="${f}"]`);
    const before = box.querySelector('b').textContent;
    if (before !== '–' && before !== row[f]) {
      box.classList.toggle('falling', percent(row[f]) < percent(before));
      box.classList.toggle('rising', percent(row[f]) > percent(before));
    }
  }
  for (const node of tile.querySelectorAll('[data-field]')) node.textContent = row[node.dataset.field];
  const succ = percent(row.succRate);
  const level = Number(row.totalCount) === 0 ? '' : succ >= 50 ? 'level-good' : succ >= 30 ? 'level-warn' : 'level-bad';
  tile.classList.remove('level-good', 'level-warn', 'level-bad');
  if (level) tile.classList.add(level);
  tile.dataset.eventId = String(id);
  document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
}

// ---- the live stream -----------------------------------------------------------------------

function setStatus(state, text) {
  const s = document.getElementById('status');
  s.dataset.state = state;
  s.textContent = text;
}

class Refused extends Error {}

/** Reads the stream until it ends; throws Refused for an answer that retrying will not fix. */
async function readStream(cfg, signal) {
  const query = streamQuery(cfg);
  const auth = await authorization(cfg, 'GET', STREAM, query, '');
  const resp = await fetch(`${STREAM}?${query}`, {
    headers: { Authorization: auth, Accept: 'text/event-stream' }, cache: 'no-store', signal });
  if (!(resp.headers.get('content-type') || '').startsWith('text/event-stream')) {
    const body = await resp.json().catch(() => ({}));
    const text = `${resp.status} ${body.resultCode || ''} ${body.resultDesc || ''}`.trim();
    if (resp.status === 401 || resp.status === 403 || resp.status === 200) throw new Refused(text);
    throw new Error(text);
  }
  setStatus('live', 'live');
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let id = null; let data = null;
      for (const line of block.split('\n')) {
        if (line.startsWith('id:')) id = Number(line.slice(3).trim());
        else if (line.startsWith('data:')) data = line.slice(5).trim();
      }
      if (data !== null) render(id, JSON.parse(data));
    }
  }
}

async function follow(cfg, signal) {
  while (!signal.aborted) {
    setStatus('connecting', 'connecting');
    try {
      await readStream(cfg, signal);
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof Refused) {
        setStatus('error', e.message);
        showLogin(e.message);
        return;
      }
    }
    if (signal.aborted) return;
    setStatus('connecting', 'reconnecting');
    await new Promise((r) => setTimeout(r, RECONNECT_MS));
  }
}

// ---- the hourly chart ----------------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// The day the chart and the causes show: "today", "yesterday" (of the tenant's calendar, as the
// server reckons it), or a date yyyy-MM-dd from the picker (any day the server still keeps).
function pickedDay() {
  const choice = document.querySelector('#day-picker input[name="day"]:checked');
  const date = document.getElementById('day-date').value;
  if (choice && choice.value === 'date') return date || 'today';
  return choice ? choice.value : 'today';
}

async function loadChart(cfg) {
  if (!selected) return;
  const body = JSON.stringify({ ...(cfg.ccId ? { ccId: cfg.ccId } : {}), vdn: cfg.vdn, taskId: selected,
    day: pickedDay(), timeGrain: '60MIN' });
  const auth = await authorization(cfg, 'POST', BREAKDOWN, '', body);
  const resp = await fetch(BREAKDOWN, { method: 'POST', body, cache: 'no-store',
    headers: { Authorization: auth, 'Content-Type': 'application/json;charset=UTF-8' } });
  const answer = await resp.json();
  if (answer.resultCode !== '0100000') return;
  drawChart(answer.resultDesc);
}

function drawChart(shape) {
  document.getElementById('detail-task').textContent = shape.taskId;
  document.getElementById('detail-day').textContent = shape.day;
  const chart = document.getElementById('chart');
  chart.replaceChildren();
  const [W, H, base] = [960, 260, 236];
  const max = Math.max(1, ...shape.buckets.map((b) => Number(b.totalCount)));
  const step = W / shape.buckets.length;
  shape.buckets.forEach((b, i) => {
    const total = Number(b.totalCount); const succ = Number(b.succCount); const fail = Number(b.failCount);
    let y = base;
    for (const [n, cls] of [[succ, 'succ'], [fail, 'fail'], [total - succ - fail, 'other']]) {
      const h = (n / max) * (base - 10);
      y -= h;
      if (n > 0) chart.append(svg('rect', { class: cls, x: i * step + 3, y, width: step - 6, height: h, 'data-start': b.start }));
    }
    if (i % 3 === 0) {
      const t = svg('text', { x: i * step + 2, y: H - 6 });
      t.textContent = b.start;
      chart.append(t);
    }
  });
  const list = document.getElementById('fail-codes');
  list.replaceChildren(...shape.failCodes.slice(0, 12).map((c) =>
    el('li', { 'data-fail-code': c.failCode }, `${c.failCode || '(no code)'}: ${c.count}`)));
  if (shape.failCodes.length === 0) list.append(el('li', { class: 'none' }, 'none that day'));
}

// ---- page ----------------------------------------------------------------------------------

let running = null;

function select(taskId) {
  selected = taskId;
  for (const [id, tile] of tiles) tile.classList.toggle('selected', id === taskId);
  const cfg = loadSettings();
  if (cfg) loadChart(cfg).catch(() => {});
}

function showLogin(message) {
  document.getElementById('board').hidden = true;
  document.getElementById('login').hidden = false;
  document.getElementById('signout').hidden = true;
  document.getElementById('login-error').textContent = message || '';
}

function start(cfg) {
  if (running) running.abort();
  const ctl = new AbortController();
  running = ctl;
  tiles.clear();
  document.getElementById('tiles').replaceChildren();
  document.getElementById('login').hidden = true;
  document.getElementById('board').hidden = false;
  document.getElementById('signout').hidden = false;
  document.getElementById('scope').textContent = `VDN ${cfg.vdn}${cfg.ccId ? `, call center ${cfg.ccId}` : ''}`;
  for (const t of cfg.taskIds) tileFor(canonicalId(t));
  select(canonicalId(cfg.taskIds[0]));
  const timer = setInterval(() => loadChart(cfg).catch(() => {}), CHART_EVERY_MS);
  ctl.signal.addEventListener('abort', () => clearInterval(timer));
  follow(cfg, ctl.signal);
}

function init() {
  const form = document.getElementById('login');
  const params = new URLSearchParams(location.search);
  for (const name of ['ccId', 'vdn', 'taskIds']) {
    if (params.has(name)) form.elements[name].value = params.get(name);
  }
  if (!globalThis.crypto || !crypto.subtle) {
    showLogin('This browser offers no WebCrypto here: open the wallboard over HTTPS, or on localhost.');
    form.querySelector('button').disabled = true;
    return;
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    try {
      const cfg = parseForm(form);
      sessionStorage.setItem(STORE, JSON.stringify(cfg));
      start(cfg);
    } catch (e) {
      showLogin(e.message);
    }
  });
  const reload = () => { const cfg = loadSettings(); if (cfg) loadChart(cfg).catch(() => {}); };
  for (const input of document.querySelectorAll('#day-picker input')) input.addEventListener('change', reload);
  document.getElementById('day-date').addEventListener('input', () => {
    document.querySelector('#day-picker input[value="date"]').checked = true;
    reload();
  });
  document.getElementById('signout').addEventListener('click', () => {
    if (running) running.abort();
    sessionStorage.removeItem(STORE);
    setStatus('idle', 'not connected');
    showLogin('');
  });
  const saved = loadSettings();
  if (saved) start(saved);
}

// For the browser test: the signing function, checked against tests/vectors/c2-auth.json.
globalThis.realstatSign = sign;
document.addEventListener('DOMContentLoaded', init);
