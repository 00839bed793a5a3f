// Drives Debian's chromium (playwright-core, executablePath) for
// tests/integration/test_dashboard.py: one JSON command per stdin line, one
// JSON answer per stdout line ({"ok": true, ...} or {"ok": false, "error"}).
//
//   {"cmd": "open", "url"}             load the page
//   {"cmd": "login", "token"}          type the token into the page's form
//   {"cmd": "state"}                   the page's tables, form and errors
//   {"cmd": "click", "key"}            click the button of the endpoint row
//                                      whose data-key is key ("cluster\0address")
//   {"cmd": "reload"}                  reload the page (sessionStorage stays)
//   {"cmd": "screenshot", "path"}      a full-page PNG
//   {"cmd": "quit"}
//
// Console errors, page errors and CSP violations are collected and handed
// back in every state, so a test can insist there are none.
'use strict';

const readline = require('readline');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = 10000;

function tables() {
  const read = (id) => [...document.querySelectorAll('#' + id + ' tbody tr')].map((tr) => {
    const row = { key: tr.dataset.key };
    for (const td of tr.querySelectorAll('td[data-col]')) row[td.dataset.col] = td.textContent;
    const b = tr.querySelector('button');
    if (b) row.button = b.textContent;
    return row;
  });
  const panels = (id) => [...document.querySelectorAll('#' + id + ' .panel')].map((p) => ({
    title: p.querySelector('h3').textContent,
    charts: [...p.querySelectorAll('svg.chart')].map((s) => ({
      title: s.querySelector('.title').textContent,
      value: s.querySelector('.value').textContent,
      paths: [...s.querySelectorAll('path')].map((x) => x.getAttribute('d') || ''),
    })),
  }));
  return {
    polls: Number(document.body.dataset.polls || 0),
    status: document.getElementById('status').textContent,
    login_visible: document.getElementById('login').checkVisibility(), // as drawn, CSS included
    login_error: document.getElementById('login-error').textContent,
    routes: read('routes'),
    clusters: read('clusters'),
    endpoints: read('endpoints'),
    route_panels: panels('route-charts'),
    cluster_panels: panels('cluster-charts'),
  };
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // root in a container: no sandbox; a closed network: nothing to fetch in the background
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--disable-quic',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--no-first-run'],
  });
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  page.setDefaultTimeout(TIMEOUT_MS);
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
  page.on('pageerror', (e) => errors.push('page: ' + e.message));

  const handlers = {
    open: async (c) => { await page.goto(c.url); return {}; },
    login: async (c) => {
      await page.locator('#token').fill(c.token);
      await page.locator('#login button[type=submit]').click();
      return {};
    },
    state: async () => Object.assign(await page.evaluate(tables), { errors }),
    click: async (c) => {
      // keys hold a NUL (as the page's maps do), which no CSS selector can name
      const i = await page.evaluate((k) => [...document.querySelectorAll('#endpoints tbody tr')]
        .findIndex((tr) => tr.dataset.key === k), c.key);
      if (i < 0) throw new Error('no endpoint row ' + JSON.stringify(c.key));
      await page.locator('#endpoints tbody tr').nth(i).locator('button').click();
      return {};
    },
    reload: async () => { await page.reload(); return {}; },
    screenshot: async (c) => { await page.screenshot({ path: c.path, fullPage: true }); return {}; },
  };

  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let answer;
    try {
      const c = JSON.parse(line);
      if (c.cmd === 'quit') break;
      if (!handlers[c.cmd]) throw new Error('unknown command ' + c.cmd);
      answer = Object.assign({ ok: true }, await handlers[c.cmd](c));
    } catch (e) {
      answer = { ok: false, error: String(e && e.stack ? e.stack : e) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  }
  await browser.close();
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e) }) + '\n');
  process.exit(1);
});
