// Heimdall web UI: one page that navigates by the URL fragment (#/jobs, #/job/<id>, …) and
// talks to the REST API of the same server. No framework and no build step: the file is
// compiled into the server binary as it is. The Content-Security-Policy forbids inline code
// and styles, so everything is built with DOM calls and styled with classes, and API data
// only ever reaches the page as text (textContent / text nodes), never as HTML.
'use strict';

// The API beside this page (/ui/ → /api/v1), so a deployment's named stage (/prod/ui/) works too.
const API = new URL('../api/v1', window.location.href).pathname;
const JOB_STATUSES = ['NEW', 'ACCEPTED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELING', 'CANCELED'];
// KILLED exists on the wire for Heimdall compatibility; a job in it is over too.
const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELED', 'KILLED']);
const UNFINISHED = 'NEW,ACCEPTED,RUNNING,CANCELING';
// The query parameters of GET /jobs; the jobs page keeps them in the fragment to be bookmarkable.
const JOB_FILTER_KEYS = ['username', 'id', 'name', 'version', 'command', 'cluster', 'status', 'tags',
  'created_after', 'created_before', 'limit', 'order_by', 'direction', 'cursor'];
const LIST_REFRESH_MS = 3000;
const JOB_POLL_MS = 1500;
const LOG_CHUNK = 64 * 1024; // bytes fetched per "tail" or "load earlier"
const LOG_DOM_LIMIT = 2 * 1024 * 1024; // past this, a followed log drops its oldest text
const RESULT_ROW_LIMIT = 1000; // rows drawn; downloads always hold them all
const SECRET_KEY = /pass(word)?|secret|token|private_key|credential|api_key/i;
const HIDDEN_VALUE = '•••••• (hidden)';
const EMPTY_BYTES = new Uint8Array(0);
const utf8 = new TextDecoder();

const app = document.getElementById('app');
const errorBar = document.getElementById('error-bar');
const errorBox = document.getElementById('error');
const userInput = document.getElementById('user');
const tokenInput = document.getElementById('token');

/* ---------- Small helpers ---------- */

// Builds an element. Props: `class`, `on<event>` listeners, `value`, else attributes
// (true → present, false/null → absent). Children: nodes, or anything else as text.
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [key, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (key === 'class') el.className = v;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), v);
    else if (key === 'value') value = v;
    else el.setAttribute(key, v === true ? '' : String(v));
  }
  el.append(...children.flat(Infinity).filter((c) => c != null && c !== false)
    .map((c) => (c instanceof Node ? c : String(c))));
  if (value !== undefined) el.value = value; // after the children, so a <select> has its options
  return el;
}

const enc = encodeURIComponent;
const none = () => h('span', { class: 'muted' }, '—');
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

// Replaces an element's content only when it differs, so auto-refresh does not re-announce
// unchanged text to screen readers or drop the user's text selection.
function setContent(el, ...content) {
  const fresh = h(el.tagName, null, ...content);
  if (fresh.innerHTML !== el.innerHTML) el.replaceChildren(...fresh.childNodes);
}

function fmtTime(epoch) {
  if (epoch == null) return none();
  const date = new Date(epoch * 1000);
  return h('time', { datetime: date.toISOString() }, date.toLocaleString());
}

function fmtDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

// Run time: start to finish, or to now while the job still runs.
function jobDuration(job) {
  if (job.started_at == null) return none();
  const end = job.finished_at ?? (TERMINAL.has(job.status) ? job.updated_at : Date.now() / 1000);
  return fmtDuration(end - job.started_at);
}

function fmtBytes(n) {
  if (n < 1024) return plural(n, 'byte');
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// <input type=datetime-local> speaks local wall time; the API speaks epoch seconds.
function toLocalInput(epoch) {
  if (!epoch || Number.isNaN(Number(epoch))) return '';
  const d = new Date(Number(epoch) * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
function fromLocalInput(value) {
  const ms = value ? new Date(value).getTime() : NaN; // no zone in the string → local time
  return Number.isNaN(ms) ? '' : String(Math.floor(ms / 1000));
}

const splitTags = (text) => [...new Set(text.split(',').map((t) => t.trim()).filter(Boolean))];
// System tags (_id:, _name:, _version:) are on every command and cluster: noise in tables.
const userTags = (tags) => (tags || []).filter((t) => !t.startsWith('_'));

function badge(status) {
  return h('span', { class: `status status-${status}` }, status);
}

function chips(tags) {
  if (!tags || !tags.length) return none();
  return h('ul', { class: 'chips' }, tags.map((t) => h('li', { class: 'chip' }, t)));
}

// Credentials never reach the page: any key that looks like one is masked, at any depth.
function redact(value) {
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value)
      .map(([k, v]) => [k, SECRET_KEY.test(k) ? HIDDEN_VALUE : redact(v)]));
  }
  return value;
}

const jsonBlock = (value) => h('pre', { class: 'json' }, JSON.stringify(redact(value ?? {}), null, 2));

function download(filename, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h('a', { href: url, download: filename, class: 'visually-hidden' });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000); // give the download time to start
}

/* ---------- Settings, errors ---------- */

// The user name outlives the tab (localStorage); the token only lives as long as the tab
// (sessionStorage), so a bearer credential is never left on disk for the next person.
const storeOf = (key) => (key === 'heimdall.token' ? sessionStorage : localStorage);
const storage = {
  get(key) { try { return storeOf(key).getItem(key) || ''; } catch { return ''; } },
  // Private browsing may refuse storage: the input still holds the value for this visit.
  set(key, value) { try { if (value) storeOf(key).setItem(key, value); else storeOf(key).removeItem(key); } catch { /* ignore */ } },
};

function initSettings() {
  userInput.value = storage.get('heimdall.user');
  tokenInput.value = storage.get('heimdall.token');
  userInput.addEventListener('input', () => storage.set('heimdall.user', userInput.value.trim()));
  tokenInput.addEventListener('input', () => storage.set('heimdall.token', tokenInput.value.trim()));
  // Enter in the settings form must not reload the page; Enter or Escape closes the token box.
  const tokenBox = document.querySelector('.token-settings');
  const closeTokenBox = () => { if (tokenBox.open) { tokenBox.open = false; tokenBox.querySelector('summary').focus(); } };
  document.getElementById('settings').addEventListener('submit', (event) => { event.preventDefault(); closeTokenBox(); });
  tokenBox.addEventListener('keydown', (event) => { if (event.key === 'Escape') closeTokenBox(); });
  document.getElementById('error-dismiss').addEventListener('click', clearError);
}

function showError(error, ...extra) {
  if (error?.name === 'AbortError') return; // the page was left: not a failure
  console.error(error);
  errorBox.replaceChildren(error instanceof Error ? error.message : String(error), ...extra);
  errorBox.hidden = errorBar.hidden = false;
}

function clearError() {
  errorBox.replaceChildren();
  errorBox.hidden = errorBar.hidden = true;
}

/* ---------- API ---------- */

class ApiError extends Error {
  constructor(message, { status = 0, code = '', id = null } = {}) {
    super(message);
    this.name = 'ApiError';
    Object.assign(this, { status, code, id });
  }
}

function authHeaders() {
  const headers = {};
  const user = userInput.value.trim();
  const token = tokenInput.value.trim();
  if (user) headers['X-Heimdall-User'] = user;
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

// fetch with the caller's identity; network failures become a readable ApiError.
async function send(path, { method = 'GET', body, headers = {}, signal } = {}) {
  // no-store: job state and logs change under the same URL; never answer from the cache.
  const init = { method, signal, cache: 'no-store', headers: { ...authHeaders(), ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  try {
    return await fetch(API + path, init);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(`Cannot reach the server: ${error.message}`);
  }
}

// Every API error is {"error", "code", "id"?}; anything else (a proxy page) gets the status line.
async function failure(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  const message = body?.error || `The server answered ${response.status} ${response.statusText}`.trim();
  return new ApiError(message, { status: response.status, code: body?.code, id: body?.id });
}

async function api(path, options) {
  const response = await send(path, options);
  if (!response.ok) throw await failure(response);
  return response.json();
}

/* ---------- Router ---------- */

// One per shown page: leaving the page aborts its requests and stops its timers.
class PageContext {
  constructor() {
    this.controller = new AbortController();
    this.timers = new Set();
  }
  get signal() { return this.controller.signal; }
  get closed() { return this.signal.aborted; }
  close() {
    this.controller.abort();
    this.timers.forEach(clearTimeout);
    this.timers.clear();
  }
  mount(...nodes) { if (!this.closed) app.replaceChildren(...nodes); }
  // Runs `step` every `ms` until it returns false or the page closes. The next call is timed
  // from the end of the last, so a slow server never gets a pile of overlapping requests.
  poll(step, ms) {
    let failed = false;
    const schedule = () => {
      const timer = setTimeout(async () => {
        this.timers.delete(timer);
        if (this.closed) return;
        let again = true;
        try {
          again = (await step()) !== false;
          if (failed) { clearError(); failed = false; } // the server is back
        } catch (error) {
          if (this.closed) return;
          showError(error);
          failed = true;
        }
        if (again && !this.closed) schedule();
      }, ms);
      this.timers.add(timer);
    };
    schedule();
  }
}

const ROUTES = [
  { pattern: /^\/jobs$/, nav: 'jobs', render: renderJobs },
  { pattern: /^\/job\/([^/]+)$/, nav: 'jobs', render: renderJob },
  { pattern: /^\/submit$/, nav: 'submit', render: renderSubmit },
  { pattern: /^\/commands$/, nav: 'commands', render: (ctx) => renderCatalogList(ctx, CATALOG.commands) },
  { pattern: /^\/command\/([^/]+)$/, nav: 'commands', render: (ctx, p) => renderCatalogItem(ctx, CATALOG.commands, p) },
  { pattern: /^\/clusters$/, nav: 'clusters', render: (ctx) => renderCatalogList(ctx, CATALOG.clusters) },
  { pattern: /^\/cluster\/([^/]+)$/, nav: 'clusters', render: (ctx, p) => renderCatalogItem(ctx, CATALOG.clusters, p) },
];

let page = null;
let lastPath = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/jobs';
  const q = raw.indexOf('?');
  return { path: q < 0 ? raw : raw.slice(0, q), query: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
}

// Commas and colons read better unescaped in a bookmarked filter (status=RUNNING,ACCEPTED).
const queryString = (params) => params.toString().replace(/%2C/gi, ',').replace(/%3A/gi, ':');

// Setting the same hash fires no hashchange: render again by hand (e.g. re-applying a filter).
function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  page?.close();
  const ctx = (page = new PageContext());
  const { path, query } = parseHash();
  const moved = lastPath !== null && path !== lastPath;
  lastPath = path;
  clearError();
  let match = null;
  const found = ROUTES.find((r) => (match = r.pattern.exec(path)));
  for (const link of document.querySelectorAll('.nav a')) {
    if (link.id === `nav-${found?.nav}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (!found) {
    ctx.mount(h('h1', { tabindex: -1 }, 'Page not found'),
      h('p', null, 'Nothing lives at this address. ', h('a', { href: '#/jobs' }, 'Go to the jobs.')));
    return;
  }
  ctx.mount(h('p', { class: 'muted' }, 'Loading…'));
  try {
    await found.render(ctx, match.slice(1).map(decodeURIComponent), query);
  } catch (error) {
    if (ctx.closed) return;
    showError(error);
    // Never leave the page blank or stuck on "Loading…".
    if (!app.querySelector('h1')) {
      ctx.mount(h('h1', { tabindex: -1 }, 'Cannot show this page'),
        h('p', null, 'See the message above. ', h('a', { href: '#/jobs' }, 'Back to the jobs.')));
    }
  }
  // Tell keyboard and screen reader users that the page changed (not on filter changes).
  if (moved && !ctx.closed) app.querySelector('h1')?.focus();
}

/* ---------- Jobs list ---------- */

async function renderJobs(ctx, _params, query) {
  const filters = new URLSearchParams();
  for (const key of JOB_FILTER_KEYS) if (query.get(key)) filters.set(key, query.get(key));

  const summary = h('p', { class: 'summary' }, 'Loading jobs…');
  const tbody = h('tbody');
  const table = h('table', { id: 'jobs-table', class: 'data' },
    h('caption', { class: 'visually-hidden' }, 'Jobs, newest first'),
    h('thead', null, h('tr', null, ['Status', 'ID', 'Name', 'Version', 'User', 'Command', 'Cluster', 'Created', 'Duration']
      .map((t) => h('th', { scope: 'col' }, t)))),
    tbody);
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  ctx.mount(
    h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, 'Jobs'),
      h('button', { type: 'button', class: 'secondary', onclick: () => route() }, 'Refresh')),
    jobsFilterForm(filters),
    // Polite live region: rows are patched in place, so only changed cells are announced.
    h('section', { class: 'live', 'aria-live': 'polite', 'aria-label': 'Job list' }, summary, h('div', { class: 'table-wrap' }, table)),
    pager);

  const load = async () => {
    const result = await api(`/jobs?${filters}`, { signal: ctx.signal });
    showJobRows(tbody, result.data);
    const unfinished = result.data.filter((j) => !TERMINAL.has(j.status)).length;
    summary.textContent = `${plural(result.data.length, 'job')} on this page${filters.has('cursor') ? '' : ', newest first'}.`
      + (unfinished ? ` ${unfinished} not finished: refreshing every ${LIST_REFRESH_MS / 1000} s.` : '');
    const pages = [];
    if (filters.has('cursor')) {
      const first = new URLSearchParams(filters);
      first.delete('cursor');
      pages.push(h('a', { id: 'first-page', class: 'button secondary', href: `#/jobs?${queryString(first)}` }, 'First page'));
    }
    if (result.has_more && result.next_cursor) {
      const next = new URLSearchParams(filters);
      next.set('cursor', result.next_cursor);
      pages.push(h('a', { id: 'next-page', class: 'button secondary', href: `#/jobs?${queryString(next)}` }, 'Next page'));
    }
    pager.replaceChildren(...pages);
    return unfinished > 0; // keep refreshing only while something can still change
  };
  try {
    if (await load()) ctx.poll(load, LIST_REFRESH_MS);
  } catch (error) {
    summary.textContent = 'The jobs could not be loaded.';
    throw error;
  }
}

function jobsFilterForm(filters) {
  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const text = (id, key, placeholder) =>
    h('input', { id, name: key, type: 'text', value: filters.get(key) || '', placeholder, spellcheck: 'false' });
  const status = filters.get('status') || '';
  const options = [['', 'Any status'], [UNFINISHED, 'Not finished'], ...JOB_STATUSES.map((s) => [s, s])];
  if (!options.some(([v]) => v === status)) options.push([status, status]); // e.g. a bookmarked list
  const user = text('filter-user', 'username', 'any user');
  const form = h('form', { id: 'jobs-filter', class: 'filters', 'aria-label': 'Filter jobs' },
    field('filter-user', 'User', user),
    field('filter-status', 'Status', h('select', { id: 'filter-status', name: 'status', value: status },
      options.map(([v, label]) => h('option', { value: v }, label)))),
    field('filter-name', 'Name', text('filter-name', 'name', 'any name')),
    field('filter-command', 'Command', text('filter-command', 'command', 'name or id')),
    field('filter-cluster', 'Cluster', text('filter-cluster', 'cluster', 'name or id')),
    field('filter-created-after', 'Created after', h('input', { id: 'filter-created-after', type: 'datetime-local', value: toLocalInput(filters.get('created_after')) })),
    field('filter-created-before', 'Created before', h('input', { id: 'filter-created-before', type: 'datetime-local', value: toLocalInput(filters.get('created_before')) })),
    h('div', { class: 'field actions' },
      h('button', { id: 'filter-apply', type: 'submit' }, 'Apply'),
      h('button', { type: 'button', class: 'secondary', onclick: () => { user.value = userInput.value.trim(); form.requestSubmit(); } }, 'My jobs'),
      h('button', { type: 'button', class: 'secondary', onclick: () => navigate('#/jobs') }, 'Clear')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    // Keep filters the form does not show (tags, version, limit…); a new filter starts at page one.
    const next = new URLSearchParams(filters);
    next.delete('cursor');
    const asIs = (v) => v;
    for (const [key, id, convert] of [['username', 'filter-user', asIs], ['status', 'filter-status', asIs],
      ['name', 'filter-name', asIs], ['command', 'filter-command', asIs], ['cluster', 'filter-cluster', asIs],
      ['created_after', 'filter-created-after', fromLocalInput], ['created_before', 'filter-created-before', fromLocalInput]]) {
      const value = convert(form.querySelector(`#${id}`).value.trim());
      if (value) next.set(key, value); else next.delete(key);
    }
    const qs = queryString(next);
    navigate(qs ? `#/jobs?${qs}` : '#/jobs');
  });
  return form;
}

function catalogLink(kind, id, name) {
  return id ? h('a', { href: `#/${kind}/${enc(id)}` }, name || id) : none();
}

function jobCells(job) {
  return [
    badge(job.status),
    // Ids are UUIDv7: the leading (time) digits repeat between neighbours, the last ones do not.
    h('a', { href: `#/job/${enc(job.id)}`, class: 'mono', title: job.id, 'aria-label': `Job ${job.id}` }, `…${job.id.slice(-12)}`),
    job.name, job.version, job.user,
    catalogLink('command', job.command_id, job.command_name),
    catalogLink('cluster', job.cluster_id, job.cluster_name),
    fmtTime(job.created_at),
    jobDuration(job),
  ];
}

// Patches rows by job id instead of redrawing the table, so a refresh only touches what changed.
function showJobRows(tbody, jobs) {
  if (!jobs.length) {
    tbody.replaceChildren(h('tr', null, h('td', { colspan: 9, class: 'empty' }, 'No jobs match these filters.')));
    return;
  }
  const existing = new Map([...tbody.querySelectorAll('tr[data-job-id]')].map((tr) => [tr.dataset.jobId, tr]));
  const rows = jobs.map((job) => {
    const cells = jobCells(job);
    const tr = existing.get(job.id) || h('tr', { 'data-job-id': job.id }, cells.map(() => h('td')));
    cells.forEach((content, i) => setContent(tr.cells[i], content));
    return tr;
  });
  const same = rows.length === tbody.rows.length && rows.every((tr, i) => tbody.rows[i] === tr);
  if (!same) tbody.replaceChildren(...rows);
}

/* ---------- One job ---------- */

// Heimdall's job_attributes: links (the server renders only http(s) URLs) and texts.
function attributeRows(attributes, row) {
  return Object.entries(attributes || {}).map(([name, attribute]) => row(name,
    attribute.kind === 'link' && /^https?:\/\//.test(attribute.value)
      ? h('a', { href: attribute.value, target: '_blank', rel: 'noopener noreferrer', class: 'job-attribute' }, attribute.value)
      : h('span', { class: 'job-attribute' }, attribute.value)));
}

async function renderJob(ctx, [id]) {
  const path = `/job/${enc(id)}`;
  let job = await api(path, { signal: ctx.signal });
  let finished = false;

  const title = h('h1', { tabindex: -1 });
  const status = h('span', { id: 'job-status', class: 'status' });
  const cancel = h('button', { id: 'cancel-job', type: 'button', class: 'danger', onclick: () => cancelJob() }, 'Cancel job');
  const fields = h('dl', { class: 'fields' });
  const context = h('div');
  const result = h('div', { class: 'result' }, h('p', { class: 'muted' }, 'The result appears when the job finishes.'));
  const stdout = new LogPane(ctx, path, 'stdout', 'Standard output');
  const stderr = new LogPane(ctx, path, 'stderr', 'Standard error');

  ctx.mount(
    h('div', { class: 'page-head' }, title, h('div', { class: 'actions' }, cancel)),
    h('p', { class: 'job-state', 'aria-live': 'polite' }, 'Status: ', status),
    h('section', { class: 'card', 'aria-labelledby': 'details-h' }, h('h2', { id: 'details-h' }, 'Details'), fields,
      h('h3', null, 'Context'), context),
    h('section', { class: 'card', 'aria-labelledby': 'result-h' }, h('h2', { id: 'result-h' }, 'Result'), result),
    stdout.element, stderr.element);

  const fill = () => {
    title.textContent = `Job ${job.name}`;
    status.className = `status status-${job.status}`;
    status.textContent = job.status;
    cancel.hidden = TERMINAL.has(job.status);
    cancel.disabled = job.status === 'CANCELING';
    cancel.textContent = job.status === 'CANCELING' ? 'Canceling…' : 'Cancel job';
    // <div> groups let the pairs flow in two columns; long texts (the error) take a full row.
    const row = (label, ...value) => h('div', { class: label === 'Error' ? 'wide' : null }, h('dt', null, label), h('dd', null, ...value));
    setContent(fields,
      row('ID', h('code', { id: 'job-id' }, job.id)),
      row('Name', job.name), row('Version', job.version),
      job.description ? row('Description', job.description) : null,
      row('User', job.user),
      row('Mode', job.is_sync ? 'sync' : 'async'),
      row('Tags', chips(job.tags)),
      row('Command criteria', chips(job.command_criteria)),
      row('Cluster criteria', chips(job.cluster_criteria)),
      row('Command', catalogLink('command', job.command_id, job.command_name)),
      row('Cluster', catalogLink('cluster', job.cluster_id, job.cluster_name)),
      row('Created', fmtTime(job.created_at)),
      row('Started', fmtTime(job.started_at)),
      row('Finished', fmtTime(job.finished_at)),
      row('Duration', jobDuration(job)),
      row('Exit code', job.exit_code ?? none()),
      job.error ? row('Error', h('span', { class: 'error-text' }, job.error)) : null,
      job.canceled_by ? row('Canceled by', job.canceled_by) : null,
      ...attributeRows(job.job_attributes, row));
    setContent(context, jsonBlock(job.context));
  };

  const loadResult = async () => {
    try {
      result.replaceChildren(...resultView(await api(`${path}/result`, { signal: ctx.signal }), job.id));
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      // 404 is the normal "this job has no result" (failed, canceled, no output table).
      result.replaceChildren(h('p', { class: error.status === 404 ? 'muted' : 'error-text' },
        error.status === 404 ? error.message : `Cannot load the result: ${error.message}`));
    }
  };

  // One refresh: the job, then its logs (read after the status, so a finished job's are complete).
  const step = async () => {
    job = await api(path, { signal: ctx.signal });
    fill();
    await Promise.all([stdout.follow(), stderr.follow()]);
    if (TERMINAL.has(job.status) && !finished) {
      finished = true;
      stdout.finish();
      stderr.finish();
      await loadResult();
    }
    return !finished;
  };

  async function cancelJob() {
    if (!window.confirm(`Cancel job "${job.name}" (${job.id})?`)) return;
    cancel.disabled = true;
    try {
      await api(`${path}/cancel`, { method: 'POST', signal: ctx.signal });
      clearError();
    } catch (error) {
      showError(error);
    }
    try { await step(); } catch (error) { showError(error); }
    cancel.disabled = job.status === 'CANCELING';
  }

  fill();
  stdout.live = stderr.live = !TERMINAL.has(job.status);
  await Promise.all([stdout.loadTail(), stderr.loadTail()]);
  if (TERMINAL.has(job.status)) {
    finished = true;
    await loadResult();
  } else {
    ctx.poll(step, JOB_POLL_MS);
  }
}

function cellValue(value) {
  if (value == null) return h('td', { class: 'null' }, 'null');
  if (typeof value === 'number') return h('td', { class: 'num' }, String(value));
  if (typeof value === 'object') return h('td', { class: 'mono' }, JSON.stringify(value));
  return h('td', null, String(value));
}

function resultView(result, jobId) {
  const columns = result.columns || [];
  const rows = result.data || [];
  const shown = rows.slice(0, RESULT_ROW_LIMIT);
  const note = rows.length > shown.length
    ? `Showing the first ${shown.length} of ${rows.length} rows; the downloads hold them all.`
    : `${plural(rows.length, 'row')}.`;
  return [
    h('div', { class: 'toolbar' },
      h('p', { class: 'muted' }, note),
      h('button', { id: 'download-csv', type: 'button', class: 'secondary', onclick: () => download(`job-${jobId}.csv`, toCsv(columns, rows), 'text/csv;charset=utf-8') }, 'Download CSV'),
      h('button', { id: 'download-json', type: 'button', class: 'secondary', onclick: () => download(`job-${jobId}.json`, JSON.stringify(result, null, 2), 'application/json') }, 'Download JSON')),
    h('div', { class: 'table-wrap' }, h('table', { id: 'result-table', class: 'data' },
      h('caption', { class: 'visually-hidden' }, 'Job result'),
      h('thead', null, h('tr', null, columns.map((c) =>
        h('th', { scope: 'col' }, h('span', { class: 'col-name' }, c.name), ' ', h('span', { class: 'col-type' }, c.type))))),
      h('tbody', null, shown.map((row) => h('tr', null, columns.map((_, i) => cellValue(row[i]))))))),
  ];
}

// RFC 4180: CRLF line ends; a field with a comma, quote or line break is quoted, quotes doubled.
// RFC 4180, with cells that a spreadsheet would run as a formula (=, +, -, @, tab, CR at the
// start) prefixed by a quote mark so they open as text (CSV injection).
function toCsv(columns, rows) {
  const field = (v) => {
    let s = v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [columns.map((c) => field(c.name)), ...rows.map((row) => columns.map((_, i) => field(row[i])))];
  return lines.map((line) => line.join(',')).join('\r\n') + '\r\n';
}

/* ---------- Logs ---------- */

// Bytes at the end that begin a UTF-8 character whose remaining bytes have not arrived yet.
function incompleteTail(bytes) {
  for (let i = 1; i <= Math.min(3, bytes.length); i++) {
    const b = bytes[bytes.length - i];
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: the lead byte is further back
    const size = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return size > i ? i : 0;
  }
  return 0;
}

// Continuation bytes at the start: a chunk cut inside a character (the earlier chunk holds them).
function leadingContinuation(bytes) {
  let k = 0;
  while (k < bytes.length && k < 3 && (bytes[k] & 0xc0) === 0x80) k++;
  return k;
}

// A stdout or stderr panel. Shows a window [start, end) of the log in bytes: first the last
// 64 KiB, then earlier chunks on request, and new bytes as they come while the job runs.
// Each chunk is its own text node, so old text can be dropped without rebuilding the <pre>.
class LogPane {
  constructor(ctx, jobPath, stream, title) {
    this.ctx = ctx;
    this.url = `${jobPath}/${stream}`;
    this.start = 0;
    this.end = 0; // bytes received, `pending` included
    this.total = null;
    this.pending = EMPTY_BYTES; // the start of a character cut by the last answer
    this.chunks = [];
    this.busy = { tail: false, head: false };
    this.error = null;
    this.live = false;
    this.loaded = false;
    this.pre = h('pre', { id: stream, class: 'log', tabindex: 0, 'aria-labelledby': `${stream}-h` });
    this.earlier = h('button', { id: `load-earlier-${stream}`, type: 'button', class: 'secondary small', hidden: true, onclick: () => this.loadEarlier() }, 'Load earlier output');
    this.info = h('p', { class: 'log-info muted' });
    this.element = h('section', { class: 'card log-panel', 'aria-labelledby': `${stream}-h` },
      h('div', { class: 'toolbar' }, h('h2', { id: `${stream}-h` }, title), this.earlier,
        h('a', { href: API + this.url, target: '_blank', rel: 'noopener' }, 'Open raw')),
      this.info, this.pre);
  }

  // Asks for a byte range. A server without Range support answers 200 with the whole log:
  // then the asked part is cut out here, so callers see the same thing either way.
  async fetchRange({ suffix, from, to }) {
    const range = suffix ? `bytes=-${suffix}` : `bytes=${from}-${to ?? ''}`;
    const response = await send(this.url, { headers: { Range: range }, signal: this.ctx.signal });
    const contentRange = response.headers.get('Content-Range') || '';
    if (response.status === 416) { // nothing at or past `from` (or an empty log): nothing new
      const total = Number(/\/(\d+)/.exec(contentRange)?.[1] ?? this.end);
      return { bytes: EMPTY_BYTES, start: from ?? total, total };
    }
    if (!response.ok) throw await failure(response);
    const body = new Uint8Array(await response.arrayBuffer());
    const match = /bytes (\d+)-\d+\/(\d+|\*)/.exec(contentRange);
    if (response.status === 206 && match) {
      return { bytes: body, start: Number(match[1]), total: match[2] === '*' ? null : Number(match[2]) };
    }
    const total = body.length;
    const first = suffix ? Math.max(0, total - suffix) : Math.min(from, total);
    const last = to == null ? total : Math.min(total, to + 1);
    return { bytes: body.subarray(first, Math.max(first, last)), start: first, total };
  }

  // One request per end at a time; errors show in the panel, not over the whole page.
  async guard(end, work) {
    if (this.busy[end]) return;
    this.busy[end] = true;
    try {
      await work();
      this.error = null;
    } catch (error) {
      if (error.name === 'AbortError') return;
      this.error = error.message;
    } finally {
      this.busy[end] = false;
      this.render();
    }
  }

  atBottom() { return this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - 8; }
  scrollToBottom() { this.pre.scrollTop = this.pre.scrollHeight; }

  addChunk(text, size, atStart) {
    const node = document.createTextNode(text);
    if (atStart) { this.pre.prepend(node); this.chunks.unshift({ node, size }); }
    else { this.pre.append(node); this.chunks.push({ node, size }); }
  }

  // Appends bytes, holding back a character cut in two until its other bytes arrive.
  append(bytes) {
    const all = new Uint8Array(this.pending.length + bytes.length);
    all.set(this.pending);
    all.set(bytes, this.pending.length);
    const cut = all.length - incompleteTail(all);
    this.pending = all.slice(cut);
    if (cut > 0) this.addChunk(utf8.decode(all.subarray(0, cut)), cut, false);
    this.end += bytes.length;
  }

  // Starts the panel over with `bytes`, which begin at byte `start` of the log.
  showTail(bytes, start) {
    const skip = start > 0 ? leadingContinuation(bytes) : 0;
    this.pre.replaceChildren();
    this.chunks = [];
    this.pending = EMPTY_BYTES;
    this.start = this.end = start + skip;
    this.append(bytes.subarray(skip));
  }

  async loadTail() {
    await this.guard('tail', async () => {
      const r = await this.fetchRange({ suffix: LOG_CHUNK });
      this.total = r.total;
      this.showTail(r.bytes, r.start);
      this.scrollToBottom();
      this.loaded = true;
    });
  }

  // New bytes since `end`; scrolls along only if the reader was already at the bottom.
  async follow() {
    if (!this.loaded) return this.loadTail(); // the first tail failed: never fetch from byte 0
    await this.guard('tail', async () => {
      const r = await this.fetchRange({ from: this.end });
      if (r.total != null) this.total = r.total;
      if (r.start > this.end) { this.showTail(r.bytes, r.start); return; } // a gap: start over
      const bytes = r.bytes.subarray(Math.min(r.bytes.length, this.end - r.start));
      if (!bytes.length) return;
      const stick = this.atBottom();
      if (bytes.length > LOG_DOM_LIMIT) { // a burst: show its tail; "Load earlier" has the rest
        const skipped = bytes.length - LOG_CHUNK;
        this.showTail(bytes.subarray(skipped), this.end + skipped);
      } else {
        this.append(bytes);
        if (stick) this.trim();
      }
      if (stick) this.scrollToBottom();
    });
  }

  // Keeps the DOM small while following: drops the oldest chunks past the limit.
  trim() {
    let shown = this.end - this.pending.length - this.start;
    while (shown > LOG_DOM_LIMIT && this.chunks.length > 1 && !this.busy.head) {
      const { node, size } = this.chunks.shift();
      node.remove();
      this.start += size;
      shown -= size;
    }
  }

  // Fetches the 64 KiB before `start` and puts it on top, keeping the visible text in place.
  async loadEarlier() {
    await this.guard('head', async () => {
      const before = this.start;
      if (before <= 0) return;
      const from = Math.max(0, before - LOG_CHUNK);
      const r = await this.fetchRange({ from, to: before - 1 });
      if (this.start !== before || r.start !== from) return; // the panel moved meanwhile
      const skip = from > 0 ? leadingContinuation(r.bytes) : 0;
      const bytes = r.bytes.subarray(skip, Math.max(skip, before - from));
      const height = this.pre.scrollHeight;
      this.addChunk(utf8.decode(bytes), bytes.length, true);
      this.start = before - bytes.length;
      this.pre.scrollTop += this.pre.scrollHeight - height;
    });
    // The button hides at the log's start: keep keyboard focus somewhere useful.
    if (this.earlier.hidden && document.activeElement === this.earlier) this.pre.focus();
  }

  // The job ended: flush a dangling partial character and stop saying "following".
  finish() {
    if (this.pending.length) this.addChunk(utf8.decode(this.pending), this.pending.length, false);
    this.pending = EMPTY_BYTES;
    this.live = false;
    this.render();
  }

  render() {
    this.earlier.hidden = this.start <= 0;
    const total = Math.max(this.total ?? 0, this.end);
    let text;
    if (this.error) text = `Cannot load the output: ${this.error}`;
    else if (total === 0) text = this.live ? 'No output yet.' : 'No output.';
    else if (this.start > 0) text = `Showing the last ${fmtBytes(total - this.start)} of ${fmtBytes(total)}.`;
    else text = `${fmtBytes(total)}.`;
    if (this.live && !this.error) text += ' Following while the job runs.';
    this.info.textContent = text;
    this.info.classList.toggle('error-text', Boolean(this.error));
  }
}

/* ---------- Commands and clusters ---------- */

const CATALOG = {
  commands: {
    title: 'Commands', one: 'command', tableId: 'commands-table', criteria: 'command_criteria',
    columns: [
      ['Name', (c) => catalogLink('command', c.id, c.name)],
      ['Version', (c) => c.version],
      ['Status', (c) => badge(c.status)],
      ['Plugin', (c) => c.plugin],
      ['Default mode', (c) => (c.is_sync ? 'sync' : 'async')],
      ['Tags', (c) => chips(userTags(c.tags))],
      ['Needs cluster tags', (c) => chips(c.cluster_tags)],
    ],
  },
  clusters: {
    title: 'Clusters', one: 'cluster', tableId: 'clusters-table', criteria: 'cluster_criteria',
    columns: [
      ['Name', (c) => catalogLink('cluster', c.id, c.name)],
      ['Version', (c) => c.version],
      ['Status', (c) => badge(c.status)],
      ['Tags', (c) => chips(userTags(c.tags))],
      ['Description', (c) => c.description || none()],
    ],
  },
};

async function renderCatalogList(ctx, kind) {
  const list = await api(`/${kind.title.toLowerCase()}`, { signal: ctx.signal });
  const items = list.data || [];
  ctx.mount(
    h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, kind.title)),
    h('p', { class: 'summary' }, `${plural(items.length, kind.one)}. System tags (_id:, _name:, _version:) are shown on each ${kind.one}'s page.`),
    h('div', { class: 'table-wrap' }, h('table', { id: kind.tableId, class: 'data' },
      h('caption', { class: 'visually-hidden' }, kind.title),
      h('thead', null, h('tr', null, kind.columns.map(([label]) => h('th', { scope: 'col' }, label)))),
      h('tbody', null, items.length
        ? items.map((item) => h('tr', { 'data-id': item.id }, kind.columns.map(([, cell]) => h('td', null, cell(item)))))
        : h('tr', null, h('td', { colspan: kind.columns.length, class: 'empty' }, `No ${kind.title.toLowerCase()}.`))))));
}

const FIELD_LABELS = {
  id: 'ID', is_sync: 'Default mode', allowed_modes: 'Allowed modes', cluster_tags: 'Needs cluster tags',
  allowed_callers: 'Allowed callers', health_check: 'Health check', created_at: 'Created', updated_at: 'Updated',
};
const FIELD_ORDER = ['id', 'name', 'version', 'status', 'description', 'user', 'plugin', 'is_sync',
  'allowed_modes', 'tags', 'cluster_tags', 'allowed_callers', 'created_at', 'updated_at'];

function fieldValue(key, value) {
  // Left out by the server when empty, as Heimdall answers.
  if (key === 'allowed_callers' && !(value && value.length)) return 'anyone';
  if (value == null || value === '') return none();
  if (key === 'status') return badge(value);
  if (key === 'is_sync') return value ? 'sync' : 'async';
  if (key.endsWith('_at') && typeof value === 'number') return fmtTime(value);
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return chips(value);
  if (typeof value === 'object') return jsonBlock(value);
  return String(value);
}

async function renderCatalogItem(ctx, kind, [id]) {
  const item = redact(await api(`/${kind.one}/${enc(id)}`, { signal: ctx.signal }));
  // Every field the server sent, known ones first, so new fields show up without a UI change.
  const keys = [...FIELD_ORDER.filter((k) => k in item || (k === 'allowed_callers' && kind.one === 'command')), ...Object.keys(item).filter((k) => !FIELD_ORDER.includes(k) && k !== 'context')];
  const label = (key) => FIELD_LABELS[key] || key.charAt(0).toUpperCase() + key.slice(1).replace(/_/g, ' ');
  const submit = new URLSearchParams({ [kind.criteria]: `_id:${item.id}` });
  ctx.mount(
    h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, `${kind.one === 'command' ? 'Command' : 'Cluster'} ${item.name}`),
      h('div', { class: 'actions' },
        h('a', { class: 'button secondary', href: `#/${kind.title.toLowerCase()}` }, `All ${kind.title.toLowerCase()}`),
        h('a', { class: 'button', href: `#/submit?${queryString(submit)}` }, `Submit a job on this ${kind.one}`))),
    h('section', { class: 'card', 'aria-labelledby': 'details-h' }, h('h2', { id: 'details-h' }, 'Details'),
      h('dl', { class: 'fields' }, keys.map((k) => h('div', { class: k === 'description' ? 'wide' : null }, h('dt', null, label(k)), h('dd', null, fieldValue(k, item[k])))))),
    h('section', { class: 'card', 'aria-labelledby': 'context-h' }, h('h2', { id: 'context-h' }, 'Context'),
      h('p', { class: 'muted' }, 'Values of keys that look like credentials are hidden.'), jsonBlock(item.context)));
}

/* ---------- Submit ---------- */

// Context is optional; when given it must be a JSON object (the plugins read named keys).
function parseContext(text) {
  if (!text.trim()) return { ok: true, value: undefined };
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `Context must be a JSON object: ${error.message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    return { ok: false, error: `Context must be a JSON object: got ${got}.` };
  }
  return { ok: true, value };
}

// A datalist only completes a whole input value; for a comma-separated list, each suggestion
// is the text typed so far plus one more tag, so completing the last tag keeps the others.
function suggestTags(input, datalist, tags) {
  const refresh = () => {
    const value = input.value;
    const cut = value.lastIndexOf(',') + 1;
    const prefix = value.slice(0, cut) + /^\s*/.exec(value.slice(cut))[0];
    const used = new Set(splitTags(value.slice(0, cut)));
    datalist.replaceChildren(...tags.filter((t) => !used.has(t)).map((t) => h('option', { value: prefix + t })));
  };
  input.addEventListener('input', refresh);
  refresh();
}

// Shows the tags typed in a comma-separated input as chips, each with a remove button.
function tagChips(input, what) {
  const list = h('ul', { class: 'chips editable', 'aria-label': `${what} entered` });
  const render = () => list.replaceChildren(...splitTags(input.value).map((tag, i, all) => h('li', { class: 'chip' }, tag,
    h('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove ${tag}`, title: `Remove ${tag}`, onclick: () => {
      input.value = all.filter((_, j) => j !== i).join(', ');
      input.dispatchEvent(new Event('input'));
      input.focus();
    } }, '×'))));
  input.addEventListener('input', render);
  render();
  return list;
}

function addTag(input, tag) {
  const tags = splitTags(input.value);
  if (!tags.includes(tag)) input.value = [...tags, tag].join(', ');
  input.dispatchEvent(new Event('input'));
}

async function renderSubmit(ctx, _params, query) {
  const input = (id, props) => h('input', { id, name: id, type: 'text', autocomplete: 'off', spellcheck: 'false', ...props });
  const field = (id, label, control, help, ...after) => h('div', { class: 'field' },
    h('label', { for: id }, label), control,
    help ? h('p', { id: `${id}-help`, class: 'hint' }, help) : null, ...after);
  const name = input('job-name', { required: true, placeholder: 'e.g. daily-report' });
  const version = input('job-version', { required: true, placeholder: 'e.g. 0.0.1' });
  const description = input('job-description', {});
  const commandCriteria = input('command-criteria', { required: true, list: 'command-tag-options', 'aria-describedby': 'command-criteria-help', value: query.get('command_criteria') || '' });
  const clusterCriteria = input('cluster-criteria', { list: 'cluster-tag-options', 'aria-describedby': 'cluster-criteria-help', value: query.get('cluster_criteria') || '' });
  const tags = input('job-tags', { 'aria-describedby': 'job-tags-help' });
  const context = h('textarea', { id: 'job-context', name: 'context', rows: 6, spellcheck: 'false', placeholder: '{"arguments": ["hello"]}', 'aria-describedby': 'job-context-help context-error' });
  const contextError = h('p', { id: 'context-error', class: 'field-error' });
  const submit = h('button', { id: 'submit-job', type: 'submit' }, 'Submit job');
  const previewButton = h('button', { id: 'preview-route', type: 'button', class: 'secondary' }, 'Preview route');
  const preview = h('section', { id: 'route-preview', 'aria-live': 'polite' });
  const commandTags = h('datalist', { id: 'command-tag-options' });
  const clusterTags = h('datalist', { id: 'cluster-tag-options' });
  const known = h('div', null, h('p', { class: 'muted' }, 'Loading the commands…'));
  const mode = (value, label) => h('label', { class: 'radio' },
    h('input', { type: 'radio', name: 'mode', value, checked: value === 'default' }), label);

  const form = h('form', { id: 'submit-form', class: 'stack', 'aria-labelledby': 'submit-h' },
    h('div', { class: 'row' },
      field('job-name', 'Name (required)', name),
      field('job-version', 'Version (required)', version)),
    h('div', { class: 'row even' },
      field('command-criteria', 'Command criteria (required)', commandCriteria,
        'Tags the command must carry, comma-separated, e.g. type:ping.', tagChips(commandCriteria, 'Command criteria')),
      field('cluster-criteria', 'Cluster criteria', clusterCriteria,
        'Tags the cluster must carry; empty: any the command accepts.', tagChips(clusterCriteria, 'Cluster criteria'))),
    h('div', { class: 'row even' },
      field('job-description', 'Description', description),
      field('job-tags', 'Job tags', tags, 'Your own labels, comma-separated.', tagChips(tags, 'Job tags'))),
    field('job-context', 'Context (JSON object)', context,
      'Input for the command\'s plugin, e.g. {"arguments": ["hello"]} for shell commands. Leave empty for none.', contextError),
    h('fieldset', { class: 'modes' }, h('legend', null, 'Run mode'),
      mode('default', 'Command default'), mode('sync', 'Sync: wait for the result'), mode('async', 'Async: queue it')),
    h('div', { class: 'actions' }, submit, ' ', previewButton),
    preview,
    commandTags, clusterTags);

  const validate = () => {
    const parsed = parseContext(context.value);
    contextError.textContent = parsed.ok ? '' : parsed.error;
    context.setAttribute('aria-invalid', String(!parsed.ok));
    submit.disabled = !parsed.ok;
    return parsed;
  };
  context.addEventListener('input', validate);

  // The job request the form describes.
  const requestBody = (parsed) => {
    const body = { name: name.value.trim(), version: version.value.trim(), command_criteria: splitTags(commandCriteria.value) };
    if (description.value.trim()) body.description = description.value.trim();
    const cluster = splitTags(clusterCriteria.value);
    if (cluster.length) body.cluster_criteria = cluster;
    const jobTags = splitTags(tags.value);
    if (jobTags.length) body.tags = jobTags;
    if (parsed.value) body.context = parsed.value;
    const chosen = form.elements.mode.value;
    if (chosen !== 'default') body.is_sync = chosen === 'sync';
    return body;
  };

  // Where the job would run (POST /job/route): each candidate's chance, and why others are out.
  previewButton.addEventListener('click', async () => {
    const parsed = validate();
    if (!parsed.ok) { context.focus(); return; }
    clearError();
    try {
      const plan = await api('/job/route', { method: 'POST', body: requestBody(parsed), signal: ctx.signal });
      const rows = plan.candidates.map((c) => h('tr', null, h('td', null, c.command_id), h('td', null, c.cluster_id),
        h('td', { class: 'num' }, `${(c.probability * 100).toFixed(2)}%`)));
      const reasons = plan.excluded.map((e) => h('li', null,
        [e.command_id && `command ${e.command_id}`, e.cluster_id && `cluster ${e.cluster_id}`].filter(Boolean).join(' on '), ': ', e.reason));
      preview.replaceChildren(
        h('h2', null, 'Route'),
        rows.length
          ? h('table', { id: 'route-candidates', class: 'data' }, h('thead', null, h('tr', null, h('th', null, 'Command'), h('th', null, 'Cluster'), h('th', null, 'Chance'))), h('tbody', null, ...rows))
          : h('p', { id: 'route-none', class: 'field-error' }, 'Nothing would run this job.'),
        reasons.length ? h('details', null, h('summary', null, `Left out (${reasons.length})`), h('ul', { id: 'route-excluded' }, ...reasons)) : null);
      preview.scrollIntoView({ block: 'nearest' });
    } catch (error) {
      showError(error);
    }
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const parsed = validate();
    if (!parsed.ok) { context.focus(); return; }
    const body = requestBody(parsed);
    clearError();
    submit.disabled = true;
    submit.textContent = 'Submitting…';
    try {
      const job = await api('/job', { method: 'POST', body, signal: ctx.signal });
      navigate(`#/job/${enc(job.id)}`);
    } catch (error) {
      // A job that matched nothing is still recorded (FAILED): point at it.
      showError(error, ...(error.id ? [' ', h('a', { href: `#/job/${enc(error.id)}` }, 'See the failed job.')] : []));
      errorBar.scrollIntoView({ block: 'nearest' });
    } finally {
      submit.textContent = 'Submit job';
      validate();
    }
  });

  ctx.mount(
    h('div', { class: 'page-head' }, h('h1', { id: 'submit-h', tabindex: -1 }, 'Submit a job')),
    h('div', { class: 'columns' }, h('section', { class: 'card' }, form),
      h('aside', { class: 'card', 'aria-labelledby': 'known-h' }, h('h2', { id: 'known-h' }, 'Active commands'), known)));

  // Suggestions are a convenience: if the catalog cannot be read, the form still works.
  try {
    const [commands, clusters] = await Promise.all([
      api('/commands', { signal: ctx.signal }), api('/clusters', { signal: ctx.signal })]);
    const active = (list) => (list.data || []).filter((item) => item.status === 'ACTIVE');
    // _id: tags are long UUIDs that nobody types: leave them out of the suggestions.
    const tagsOf = (items, key) => [...new Set(items.flatMap((i) => i[key] || []))]
      .filter((t) => !t.startsWith('_id:')).sort((a, b) => a.startsWith('_') - b.startsWith('_') || a.localeCompare(b));
    suggestTags(commandCriteria, commandTags, tagsOf(active(commands), 'tags'));
    suggestTags(clusterCriteria, clusterTags, tagsOf(active(clusters), 'tags'));
    const items = active(commands);
    known.replaceChildren(items.length
      ? h('ul', { class: 'known' }, items.map((c) => h('li', null,
        h('a', { href: `#/command/${enc(c.id)}` }, c.name), ` (${c.plugin}, ${c.is_sync ? 'sync' : 'async'} by default)`,
        h('div', { class: 'chips' }, userTags(c.tags).map((t) => h('button', { type: 'button', class: 'chip chip-button', title: `Add ${t} to the command criteria`, onclick: () => addTag(commandCriteria, t) }, `+ ${t}`))))))
      : h('p', { class: 'muted' }, 'No active commands.'));
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    known.replaceChildren(h('p', { class: 'muted' }, `Tag suggestions are unavailable: ${error.message}`));
  }
}

/* ---------- Start ---------- */

// Last line of defence: an unexpected exception shows up as a message, not a dead page.
window.addEventListener('error', (event) => showError(event.error || event.message));
window.addEventListener('unhandledrejection', (event) => showError(event.reason));
window.addEventListener('hashchange', route);
initSettings();
route();
