// weir's dashboard (served by src/admin/dashboard.c, see docs/operations.md).
//
// Every second: GET metrics (Prometheus text) and api/v1/clusters (JSON),
// with `Authorization: Bearer` when a token is kept in sessionStorage (asked
// for once, on the first 401). From the metrics it sums each route's and each
// cluster's counters and histogram buckets; the tables show totals since
// weir started and percentiles of all observations, the charts the rate,
// 5xx share and percentiles over the last WINDOW scrapes. The drain / enable
// buttons PATCH the endpoint. Everything is written to the DOM as text (the
// page's CSP forbids inline code and HTML sinks).
'use strict';

const POLL_MS = 1000;
const WINDOW = 5;        // scrapes the charts' rates and percentiles span
const HISTORY = 120;     // points kept per chart
const TOKEN_KEY = 'weir.admin.token';
const QUANTILES = [0.5, 0.95, 0.99];

// ---- Prometheus text format 0.0.4 ------------------------------------------

function parseValue(s) {
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s);
}

// Returns [{name, labels: {k: v}, value}] for each sample line of text.
// Lines that do not parse are skipped.
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '' || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (!m) continue;
    let i = m[1].length;
    const labels = {};
    if (line[i] === '{') {
      i = parseLabels(line, i + 1, labels);
      if (i < 0) continue;
    }
    const fields = line.slice(i).trim().split(/\s+/);
    const value = parseValue(fields[0]);
    if (fields[0] === '' || (Number.isNaN(value) && fields[0] !== 'NaN')) continue;
    out.push({ name: m[1], labels, value });
  }
  return out;
}

// Reads `name="value",...}` from line at i into labels; returns the index
// after '}', or -1.
function parseLabels(line, i, labels) {
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return i + 1;
    const eq = line.indexOf('=', i);
    if (eq < 0 || line[eq + 1] !== '"') return -1;
    const name = line.slice(i, eq).trim();
    let v = '';
    for (i = eq + 2; i < line.length && line[i] !== '"'; i++) {
      if (line[i] === '\\' && i + 1 < line.length) {
        i++;
        v += line[i] === 'n' ? '\n' : line[i];
      } else {
        v += line[i];
      }
    }
    if (i >= line.length) return -1;
    labels[name] = v;
    i++;
  }
}

// ---- sums per route, cluster and endpoint -------------------------------------

function entry(map, key, init) {
  let e = map.get(key);
  if (!e) {
    e = Object.assign({ total: 0, err5: 0, buckets: new Map() }, init);
    map.set(key, e);
  }
  return e;
}

function addBucket(e, le, v) {
  const b = parseValue(le);
  e.buckets.set(b, (e.buckets.get(b) || 0) + v);
}

// One scrape summed: {routes, clusters, endpoints: Map key -> requests}.
function summarize(samples) {
  const s = { routes: new Map(), clusters: new Map(), endpoints: new Map() };
  for (const { name, labels: l, value } of samples) {
    if (name === 'weir_http_requests_total') {
      const r = entry(s.routes, l.listener + '\u0000' + l.route, { listener: l.listener, route: l.route });
      r.total += value;
      if (l.code === '5xx') r.err5 += value;
      if (l.cluster) {
        const c = entry(s.clusters, l.cluster, { name: l.cluster });
        c.total += value;
        if (l.code === '5xx') c.err5 += value;
      }
    } else if (name === 'weir_http_request_duration_seconds_bucket') {
      addBucket(entry(s.routes, l.listener + '\u0000' + l.route, { listener: l.listener, route: l.route }),
                l.le, value);
    } else if (name === 'weir_upstream_response_seconds_bucket') {
      addBucket(entry(s.clusters, l.cluster, { name: l.cluster }), l.le, value);
    } else if (name === 'weir_upstream_requests_total') {
      const k = l.cluster + '\u0000' + l.endpoint;
      s.endpoints.set(k, (s.endpoints.get(k) || 0) + value);
    }
  }
  return s;
}

// The q-quantile of cumulative buckets (Map upper bound -> count), as
// Prometheus' histogram_quantile: linear interpolation inside the bucket
// holding rank q*count, the lowest bucket starting at 0, the +Inf bucket
// answered with the highest finite bound. NaN without observations.
function quantile(q, buckets) {
  const b = [...buckets.entries()].sort((x, y) => x[0] - y[0]);
  if (b.length < 2 || b[b.length - 1][0] !== Infinity) return NaN;
  for (let i = 1; i < b.length; i++) b[i][1] = Math.max(b[i][1], b[i - 1][1]);
  const total = b[b.length - 1][1];
  if (total <= 0) return NaN;
  let rank = q * total;
  let i = b.findIndex(([, c]) => c >= rank);
  if (i === b.length - 1) return b[b.length - 2][0];
  if (i === 0 && b[0][0] <= 0) return b[0][0];
  let start = 0;
  let count = b[i][1];
  if (i > 0) {
    start = b[i - 1][0];
    count -= b[i - 1][1];
    rank -= b[i - 1][1];
  }
  return start + (b[i][0] - start) * (rank / count);
}

// cur minus old, counter by counter (a counter that went down restarted).
function delta(cur, old) {
  const d = (a, b) => (a >= b ? a - b : a);
  const buckets = new Map();
  for (const [le, c] of cur.buckets) buckets.set(le, d(c, old ? old.buckets.get(le) || 0 : 0));
  return { total: d(cur.total, old ? old.total : 0), err5: d(cur.err5, old ? old.err5 : 0), buckets };
}

// ---- formatting ---------------------------------------------------------------------

function fmtCount(n) { return String(Math.round(n)); }
function fmtShare(err, total) { return total > 0 ? (100 * err / total).toFixed(1) + ' %' : '\u2013'; }
function fmtRate(r) { return Number.isFinite(r) ? r.toFixed(1) : '\u2013'; }
function fmtSeconds(s) {
  if (!Number.isFinite(s)) return '\u2013';
  return s < 1 ? (s * 1000).toFixed(s < 0.01 ? 2 : 1) + ' ms' : s.toFixed(2) + ' s';
}
function fmtBool(b) { return b ? 'yes' : 'no'; }

// ---- DOM helpers -----------------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// Keeps one <tr> per key in tbody, in the order of rows ([key, ...]);
// make(key) builds a new row, fill(tr, row) writes its cells.
function syncRows(tbody, rows, make, fill) {
  const old = new Map([...tbody.rows].map((tr) => [tr.dataset.key, tr]));
  rows.forEach((row, i) => {
    let tr = old.get(row.key);
    if (!tr) {
      tr = make(row);
      tr.dataset.key = row.key;
    }
    old.delete(row.key);
    fill(tr, row);
    if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
  });
  for (const tr of old.values()) tr.remove();
}

// A row of cells named cols (data-col), numbers right-aligned.
function makeRow(cols, numeric) {
  const tr = el('tr');
  for (const c of cols) tr.append(el('td', Object.assign({ 'data-col': c }, numeric.includes(c) ? { class: 'num' } : {})));
  return tr;
}

function setCell(tr, col, text, cls) {
  const td = tr.querySelector('td[data-col="' + col + '"]');
  if (td.textContent !== text) td.textContent = text;
  if (cls !== undefined) td.className = cls;
}

// ---- charts: hand-written SVG -------------------------------------------------------

const CW = 260, CH = 70, TOP = 14;

// A chart of one or more series; returns {node, update(seriesValues)}.
function makeChart(title, names, fmt) {
  const node = svg('svg', { class: 'chart', width: CW, height: CH, viewBox: '0 0 ' + CW + ' ' + CH });
  node.append(svg('text', { class: 'title', x: 0, y: 10 }, title));
  const value = svg('text', { class: 'value', x: CW, y: 10, 'text-anchor': 'end' });
  node.append(value, svg('rect', { class: 'axis', x: 0.5, y: TOP + 0.5, width: CW - 1, height: CH - TOP - 1 }));
  const paths = names.map((n, i) => {
    const p = svg('path', { class: 's' + i });
    p.append(svg('title', {}, n));
    node.append(p);
    return p;
  });
  function update(series) {
    let max = 0;
    for (const s of series) for (const v of s) if (Number.isFinite(v) && v > max) max = v;
    max = max > 0 ? max * 1.1 : 1;
    series.forEach((s, k) => {
      let d = '';
      let pen = 'M';
      s.forEach((v, i) => {
        if (!Number.isFinite(v)) { pen = 'M'; return; }
        const x = CW - 1 - (s.length - 1 - i) * (CW - 2) / (HISTORY - 1);
        const y = CH - 1 - (v / max) * (CH - TOP - 2);
        d += pen + x.toFixed(1) + ' ' + y.toFixed(1) + (pen === 'M' ? 'l0 0' : ''); // a lone point: a dot
        pen = 'L';
      });
      paths[k].setAttribute('d', d);
    });
    value.textContent = names.map((n, k) => (names.length > 1 ? n + ' ' : '') + fmt(series[k][series[k].length - 1])).join('  ');
  }
  return { node, update };
}

// A panel per route or cluster: requests/s, 5xx share, p50/p95/p99.
function makePanel(title) {
  const node = el('div', { class: 'panel' });
  node.append(el('h3', {}, title));
  const charts = [
    makeChart('requests/s', ['req/s'], fmtRate),
    makeChart('5xx share', ['5xx'], (v) => (Number.isFinite(v) ? v.toFixed(1) + ' %' : '\u2013')),
    makeChart('latency', ['p50', 'p95', 'p99'], fmtSeconds),
  ];
  for (const c of charts) node.append(c.node);
  const hist = { rate: [], err: [], q: QUANTILES.map(() => []) };
  function push(arr, v) { arr.push(v); if (arr.length > HISTORY) arr.shift(); }
  function add(w, seconds) {
    push(hist.rate, seconds > 0 ? w.total / seconds : NaN);
    push(hist.err, w.total > 0 ? 100 * w.err5 / w.total : NaN);
    QUANTILES.forEach((q, i) => push(hist.q[i], quantile(q, w.buckets)));
    charts[0].update([hist.rate]);
    charts[1].update([hist.err]);
    charts[2].update(hist.q);
  }
  return { node, add, seen: true };
}

function syncPanels(container, panels, keys, title) {
  for (const p of panels.values()) p.seen = false;
  for (const k of keys) {
    let p = panels.get(k);
    if (!p) {
      p = makePanel(title(k));
      panels.set(k, p);
      container.append(p.node);
    }
    p.seen = true;
  }
  for (const [k, p] of panels) if (!p.seen) { p.node.remove(); panels.delete(k); }
}

// ---- the admin API ------------------------------------------------------------------

class AuthError extends Error {
  constructor(status) { super(status === 403 ? 'the token was refused' : 'a token is needed'); this.status = status; }
}

async function call(path, init) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = Object.assign({}, (init && init.headers) || {});
  if (token) headers.Authorization = 'Bearer ' + token;
  const r = await fetch(path, Object.assign({ cache: 'no-store' }, init, { headers }));
  if (r.status === 401 || r.status === 403) throw new AuthError(r.status);
  if (!r.ok) {
    let detail = r.statusText;
    try { const j = await r.json(); detail = j.error + (j.detail ? ': ' + j.detail : ''); } catch (e) { /* not JSON */ }
    throw new Error(path + ': ' + r.status + ' ' + detail);
  }
  return r;
}

// Keeps '[', ']' and ':' of an address readable in the path.
function seg(s) { return encodeURIComponent(s).replace(/%3A/gi, ':').replace(/%5B/gi, '[').replace(/%5D/gi, ']'); }

// ---- the page -------------------------------------------------------------------------

const state = {
  history: [], routePanels: new Map(), clusterPanels: new Map(), clusters: [], busy: new Set(),
  timer: 0, inflight: false, stopped: false,   // one poll chain; stopped while asking for the token
};
const $ = (id) => document.getElementById(id);

function setStatus(text, error) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

const NO_ROUTE = '(none: refused before routing)';
function routeTitle(r) { return r.listener + ' / ' + (r.route === '' ? NO_ROUTE : r.route); }

function renderRoutes(cur) {
  // requests refused before routing (route="") only once there are some
  const keys = [...cur.routes.keys()].filter((k) => cur.routes.get(k).route !== '' || cur.routes.get(k).total > 0).sort();
  const rows = keys.map((k) => Object.assign({ key: k }, cur.routes.get(k)));
  const rate = windowRates(cur, 'routes');
  syncRows($('routes').tBodies[0], rows,
    () => makeRow(['listener', 'route', 'requests', 'err5', 'share', 'rate', 'p50', 'p95', 'p99'],
                  ['requests', 'err5', 'share', 'rate', 'p50', 'p95', 'p99']),
    (tr, r) => {
      setCell(tr, 'listener', r.listener);
      setCell(tr, 'route', r.route === '' ? NO_ROUTE : r.route);
      setCell(tr, 'requests', fmtCount(r.total));
      setCell(tr, 'err5', fmtCount(r.err5));
      setCell(tr, 'share', fmtShare(r.err5, r.total));
      setCell(tr, 'rate', fmtRate(rate.get(r.key)));
      QUANTILES.forEach((q, i) => setCell(tr, ['p50', 'p95', 'p99'][i], fmtSeconds(quantile(q, r.buckets))));
    });
  syncPanels($('route-charts'), state.routePanels, keys, (k) => routeTitle(cur.routes.get(k)));
}

function renderClusters(cur) {
  const keys = [...cur.clusters.keys()].sort();
  const rows = keys.map((k) => Object.assign({ key: k }, cur.clusters.get(k)));
  const rate = windowRates(cur, 'clusters');
  syncRows($('clusters').tBodies[0], rows,
    () => makeRow(['cluster', 'requests', 'err5', 'share', 'rate', 'p50', 'p95', 'p99'],
                  ['requests', 'err5', 'share', 'rate', 'p50', 'p95', 'p99']),
    (tr, c) => {
      setCell(tr, 'cluster', c.name);
      setCell(tr, 'requests', fmtCount(c.total));
      setCell(tr, 'err5', fmtCount(c.err5));
      setCell(tr, 'share', fmtShare(c.err5, c.total));
      setCell(tr, 'rate', fmtRate(rate.get(c.key)));
      QUANTILES.forEach((q, i) => setCell(tr, ['p50', 'p95', 'p99'][i], fmtSeconds(quantile(q, c.buckets))));
    });
  syncPanels($('cluster-charts'), state.clusterPanels, keys, (k) => k);
}

// requests/s of each key over the window (NaN until two scrapes).
function windowRates(cur, kind) {
  const h = state.history;
  const old = h.length > 1 ? h[0] : null;
  const seconds = old ? (h[h.length - 1].at - old.at) / 1000 : 0;
  const out = new Map();
  for (const [k, e] of cur[kind]) out.set(k, old && seconds > 0 ? delta(e, old.sum[kind].get(k)).total / seconds : NaN);
  return out;
}

function chartTick(cur) {
  const h = state.history;
  if (h.length < 2) return;
  const old = h[0];
  const seconds = (h[h.length - 1].at - old.at) / 1000;
  for (const [kind, panels] of [['routes', state.routePanels], ['clusters', state.clusterPanels]])
    for (const [k, p] of panels) p.add(delta(cur[kind].get(k), old.sum[kind].get(k)), seconds);
}

function renderEndpoints(clusters, cur) {
  const rows = [];
  for (const c of clusters)
    for (const e of c.endpoints) rows.push(Object.assign({ key: c.name + '\u0000' + e.address, cluster: c.name }, e));
  syncRows($('endpoints').tBodies[0], rows,
    (row) => {
      const tr = makeRow(['cluster', 'address', 'weight', 'up', 'healthy', 'draining', 'ejected', 'breaker',
                          'in_flight', 'ewma', 'requests', 'action'],
                         ['weight', 'in_flight', 'ewma', 'requests']);
      const b = el('button', { type: 'button' });
      b.addEventListener('click', () => toggleDrain(row.cluster, row.address, b));
      tr.querySelector('td[data-col="action"]').append(b);
      return tr;
    },
    (tr, e) => {
      setCell(tr, 'cluster', e.cluster);
      setCell(tr, 'address', e.address);
      setCell(tr, 'weight', String(e.weight));
      setCell(tr, 'up', fmtBool(e.up), e.up ? 'yes' : 'no');
      setCell(tr, 'healthy', fmtBool(e.healthy), e.healthy ? 'yes' : 'no');
      setCell(tr, 'draining', fmtBool(e.draining), e.draining ? 'flag' : '');
      setCell(tr, 'ejected', fmtBool(e.ejected), e.ejected ? 'flag' : '');
      setCell(tr, 'breaker', e.breaker, e.breaker === 'open' ? 'no' : e.breaker === 'half-open' ? 'flag' : '');
      setCell(tr, 'in_flight', String(e.in_flight));
      setCell(tr, 'ewma', Number(e.ewma_latency_ms || 0).toFixed(1) + ' ms');
      setCell(tr, 'requests', cur ? fmtCount(cur.endpoints.get(e.key) || 0) : '\u2013');
      const b = tr.querySelector('button');
      b.textContent = e.draining ? 'Enable' : 'Drain';
      b.dataset.drain = e.draining ? 'false' : 'true';
      b.disabled = state.busy.has(e.key);
    });
}

async function toggleDrain(cluster, address, button) {
  const key = cluster + '\u0000' + address;
  const drain = button.dataset.drain === 'true';
  state.busy.add(key);
  button.disabled = true;
  try {
    const r = await call('api/v1/clusters/' + seg(cluster) + '/endpoints/' + seg(address), {
      method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ drain }),
    });
    const e = await r.json();
    const c = state.clusters.find((x) => x.name === cluster);
    const i = c ? c.endpoints.findIndex((x) => x.address === address) : -1;
    if (i >= 0) c.endpoints[i] = Object.assign({}, c.endpoints[i], e); // PATCH answers fewer fields
    setStatus((drain ? 'draining ' : 'enabled ') + address);
  } catch (err) {
    if (err instanceof AuthError) askToken(err);
    else setStatus(err.message, true);
  } finally {
    state.busy.delete(key);
    renderEndpoints(state.clusters, state.history.length ? state.history[state.history.length - 1].sum : null);
  }
}

async function poll() {
  state.timer = 0;
  state.inflight = true;
  try {
    const [m, c] = await Promise.all([call('metrics'), call('api/v1/clusters')]);
    const [text, json] = await Promise.all([m.text(), c.json()]);
    const sum = summarize(parseMetrics(text));
    state.history.push({ at: performance.now(), sum });
    if (state.history.length > WINDOW + 1) state.history.shift();
    state.clusters = json.clusters || [];
    renderRoutes(sum);
    renderClusters(sum);
    renderEndpoints(state.clusters, sum);
    chartTick(sum);
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
    setStatus('updated ' + new Date().toLocaleTimeString());
  } catch (err) {
    if (err instanceof AuthError) askToken(err);
    else setStatus('cannot reach weir: ' + err.message, true);
  }
  state.inflight = false;
  if (!state.stopped) state.timer = setTimeout(poll, POLL_MS);
}

function askToken(err) {
  clearTimeout(state.timer);
  state.timer = 0;
  state.stopped = true;
  setStatus(err.message, true);
  $('login-error').textContent = err.status === 403 ? 'That token was refused.' : '';
  $('login').hidden = false;
  $('token').focus();
}

function start() {
  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
    $('token').value = '';
    $('login').hidden = true;
    state.stopped = false;
    if (!state.timer && !state.inflight) poll();
  });
  poll();
}

if (typeof document !== 'undefined') document.addEventListener('DOMContentLoaded', start);
// node's test runner loads the pure parts (tests/browser/dashboard.test.js)
if (typeof module !== 'undefined') module.exports = { parseMetrics, summarize, quantile, delta };
