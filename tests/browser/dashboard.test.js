// The dashboard's pure parts under node's test runner: the Prometheus text
// parser (whole, byte-sliced and on random input), the sums per route /
// cluster / endpoint, and histogram_quantile (Prometheus' own examples).
// Run: node --test tests/browser/ (make test does).
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { parseMetrics, summarize, quantile, delta } =
  require(path.join(__dirname, '..', '..', 'src', 'admin', 'dashboard', 'dashboard.js'));

const TEXT = `# HELP weir_http_requests_total Requests answered.
# TYPE weir_http_requests_total counter
weir_http_requests_total{listener="web",route="a",cluster="app",code="2xx"} 30
weir_http_requests_total{listener="web",route="b",cluster="app",code="2xx"} 6
weir_http_requests_total{listener="web",route="b",cluster="app",code="5xx"} 4
weir_http_requests_total{listener="web",route="",cluster="",code="4xx"} 2
weir_http_request_duration_seconds_bucket{listener="web",route="a",le="0.001"} 10
weir_http_request_duration_seconds_bucket{listener="web",route="a",le="0.01"} 25
weir_http_request_duration_seconds_bucket{listener="web",route="a",le="+Inf"} 30
weir_http_request_duration_seconds_sum{listener="web",route="a"} 0.12
weir_upstream_requests_total{cluster="app",endpoint="127.0.0.1:9001",code="2xx"} 20
weir_upstream_requests_total{cluster="app",endpoint="127.0.0.1:9001",code="5xx"} 2
weir_upstream_requests_total{cluster="app",endpoint="127.0.0.1:9002",code="2xx"} 18
process_start_time_seconds 1.7e+09
`;

test('parses names, labels with escapes, special values and timestamps', () => {
  const s = parseMetrics('a{x="q\\"uo\\\\te\\nnl",y="}{,="} 1.5 1700000000000\nb +Inf\nc -Inf\nd NaN\n' +
                         'e{} 2\n# comment\nbad line here\nf{x="unterminated} 3\ng{x="1",} 4\n');
  assert.deepStrictEqual(s[0], { name: 'a', labels: { x: 'q"uo\\te\nnl', y: '}{,=' }, value: 1.5 });
  assert.strictEqual(s[1].value, Infinity);
  assert.strictEqual(s[2].value, -Infinity);
  assert.ok(Number.isNaN(s[3].value));
  assert.deepStrictEqual(s[4], { name: 'e', labels: {}, value: 2 });
  assert.deepStrictEqual(s.slice(5).map((x) => x.name), ['g']); // bad line and unterminated value skipped
});

test('sums per route, cluster and endpoint', () => {
  const s = summarize(parseMetrics(TEXT));
  const a = s.routes.get('web\u0000a'), b = s.routes.get('web\u0000b');
  assert.deepStrictEqual([a.total, a.err5, b.total, b.err5], [30, 0, 10, 4]);
  assert.deepStrictEqual([...a.buckets], [[0.001, 10], [0.01, 25], [Infinity, 30]]);
  assert.strictEqual(s.routes.get('web\u0000').total, 2);
  assert.deepStrictEqual([s.clusters.get('app').total, s.clusters.get('app').err5], [40, 4]);
  assert.ok(!s.clusters.has(''));
  assert.strictEqual(s.endpoints.get('app\u0000127.0.0.1:9001'), 22);
  assert.strictEqual(s.endpoints.get('app\u0000127.0.0.1:9002'), 18);
});

test('histogram_quantile as Prometheus computes it', () => {
  const h = (pairs) => new Map(pairs);
  // Prometheus' promql tests: buckets 0.1:1 0.2:2 0.4:3 1:4 +Inf:5 (testdata/histograms.test style)
  const b = h([[0.1, 1], [0.2, 2], [0.4, 3], [1, 4], [Infinity, 5]]);
  assert.strictEqual(quantile(0.5, b), 0.2 + (0.4 - 0.2) * 0.5);
  assert.strictEqual(quantile(0.1, b), 0.05);      // lowest bucket starts at 0
  assert.strictEqual(quantile(0.99, b), 1);        // in +Inf: the highest finite bound
  assert.ok(Number.isNaN(quantile(0.5, h([[0.1, 0], [Infinity, 0]]))));  // no observations
  assert.ok(Number.isNaN(quantile(0.5, h([[0.1, 3]]))));                 // no +Inf bucket
  assert.strictEqual(quantile(0.5, h([[1, 2], [0.5, 3], [Infinity, 4]])), 0.5 * 2 / 3); // non-monotonic fixed
  assert.strictEqual(quantile(0.5, h([[-1, 2], [Infinity, 4]])), -1);  // first bound <= 0
});

test('delta treats a counter that went down as restarted', () => {
  const cur = { total: 5, err5: 1, buckets: new Map([[1, 5], [Infinity, 5]]) };
  const old = { total: 9, err5: 0, buckets: new Map([[1, 2], [Infinity, 9]]) };
  const d = delta(cur, old);
  assert.deepStrictEqual([d.total, d.err5, [...d.buckets]], [5, 1, [[1, 3], [Infinity, 5]]]);
  assert.deepStrictEqual(delta(cur, undefined).total, 5);
});

test('never throws on random or cut input, and cut input loses no whole line', () => {
  let seed = 12345;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const alphabet = 'ab_{}="\\,\n #+-.0123456789eInfNa';
  for (let i = 0; i < 5000; i++) {
    let s = '';
    for (let k = rnd(80); k > 0; k--) s += alphabet[rnd(alphabet.length)];
    const out = parseMetrics(s);
    assert.ok(Array.isArray(out));
    summarize(out);
  }
  const whole = parseMetrics(TEXT).length;
  for (let cut = 0; cut <= TEXT.length; cut++) {
    const head = TEXT.slice(0, cut), tail = TEXT.slice(cut);
    const nl = head.lastIndexOf('\n') + 1; // the line the cut splits, whole again
    const n = parseMetrics(head.slice(0, nl)).length + parseMetrics(head.slice(nl) + tail).length;
    assert.strictEqual(n, whole, 'cut at ' + cut);
  }
});
