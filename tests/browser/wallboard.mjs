// The wallboard in a real browser (Debian's chromium, driven by playwright-core), against the
// running demo. scripts/browser-test starts the demo and sets the environment:
//
//   REALSTAT_API_URL       http://127.0.0.1:PORT (the API listener, which serves /wallboard)
//   REALSTAT_AK, _SK       the demo key (printed in its banner)
//   REALSTAT_BROKERS       the demo's embedded Kafka (printed in its banner)
//   REALSTAT_BIN           the realstat binary (for `realstat simulate`)
//   REALSTAT_NODE_MODULES  where playwright-core is installed
//   REALSTAT_SHOTS         directory for the screenshots
//
// What it checks, in order: the page's WebCrypto signer reproduces every vector of
// tests/vectors/c2-auth.json; after entering the key the page shows one tile per task; tiles
// update live; a task fed by a bounded simulator run ends up showing exactly what a signed batch
// query answers, and the live tasks' tiles lie between two batch reads; the hourly chart and the
// causes are drawn; the day picker switches both to yesterday and to a chosen date; the layout fits 1920x1080 and a laptop without horizontal scrolling; the key
// lives in sessionStorage only and signing out removes it. Waits are bounded only so that a
// failure does not hang the run.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run scripts/browser-test`);
  return v;
};
const API = env('REALSTAT_API_URL');
const AK = env('REALSTAT_AK');
const SK = env('REALSTAT_SK');
const SHOTS = env('REALSTAT_SHOTS');
const require = createRequire(path.join(env('REALSTAT_NODE_MODULES'), 'node_modules') + '/');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const BATCH = '/rest/cmsapp/v1/openapi/fromisales/realstatistics';
const DEMO_TASKS = ['1122104910', '1122104911', '1122104912'];
const QUIET = '7770001';
const TASKS = [...DEMO_TASKS, QUIET];
const FIELDS = ['totalCount', 'succCount', 'failCount', 'succRate', 'compCount', 'compRate', 'waitCount', 'execCount'];
const GUARD = 180_000;

let passed = 0;
async function check(name, body) {
  process.stdout.write(`  ${name} ... `);
  await body();
  passed += 1;
  console.log('ok');
}

// ---- an independent C2 signer (node:crypto), for the batch queries ---------------------------

function normalize(text) {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function c2(method, pathname, host, body) {
  const ts = new Date().toISOString().slice(0, 19) + 'Z';
  const prefix = `auth-v2/${AK}/${ts}/host`;
  const key = crypto.createHmac('sha256', SK).update(prefix).digest('hex');
  const canonical = [method, pathname, 'host', `host:${normalize(host)}`, normalize(body)].join('\n');
  return `${prefix}/${crypto.createHmac('sha256', key).update(canonical).digest('hex')}`;
}

async function batch() {
  const body = JSON.stringify({ ccId: 1, vdn: 92, taskIds: TASKS });
  const host = new URL(API).host;
  const resp = await fetch(API + BATCH, {
    method: 'POST', body,
    headers: { Authorization: c2('POST', BATCH, host, body), 'Content-Type': 'application/json;charset=UTF-8' },
  });
  const answer = await resp.json();
  assert.equal(answer.resultCode, '0100000', JSON.stringify(answer));
  return Object.fromEntries(answer.resultDesc.map((r) => [r.taskId, r]));
}

// ---- the page ------------------------------------------------------------------------------

async function tile(page, taskId) {
  return page.evaluate(({ id, fields }) => {
    const t = document.querySelector(`.tile[data-task="${id}"]`);
    if (!t) return null;
    const row = { taskId: id, eventId: Number(t.dataset.eventId || 0) };
    for (const f of fields) row[f] = t.querySelector(`[data-field="${f}"]`).textContent;
    return row;
  }, { id: taskId, fields: FIELDS });
}

function values(row) {
  return Object.fromEntries(FIELDS.map((f) => [f, row[f]]));
}

function simulateQuietTask() {
  const child = spawn(env('REALSTAT_BIN'), ['simulate', '--kafka-brokers', env('REALSTAT_BROKERS'),
    '--cc-id', '1', '--vdn', '92', '--tasks', QUIET, '--rate', '4', '--max-calls', '8',
    '--answer-ratio', '0.5', '--seed', '11'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill(); reject(new Error(`simulate did not finish:\n${log}`)); }, GUARD);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(); else reject(new Error(`simulate exited ${code}:\n${log}`));
    });
  });
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.REALSTAT_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
    page.setDefaultTimeout(GUARD);
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(`${API}/wallboard?ccId=1&vdn=92&taskIds=${TASKS.join(',')}`);

    await check('the page signs every C2 vector as docs/api.md says', async () => {
      const { vectors } = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/vectors/c2-auth.json'), 'utf8'));
      for (const v of vectors) {
        const got = await page.evaluate((v) => globalThis.realstatSign({
          ak: v.ak, sk: v.sk, timestamp: v.timestamp, method: v.method, path: v.uri,
          query: new URLSearchParams(v.query).toString(), headers: v.signedHeaders, body: v.body,
        }), v);
        assert.equal(got, v.authorization, v.name);
      }
    });

    await check('entering the key shows one tile per task, with values', async () => {
      await page.fill('input[name=ak]', AK);
      await page.fill('input[name=sk]', SK);
      await page.click('#login button[type=submit]');
      await page.waitForFunction((ids) => ids.every((id) =>
        document.querySelector(`.tile[data-task="${id}"]`)?.dataset.eventId), TASKS);
      assert.equal(await page.locator('.tile').count(), TASKS.length);
      assert.equal(await page.textContent('#status'), 'live');
      const stored = await page.evaluate(() => ({ session: sessionStorage.getItem('realstat.wallboard'),
        local: localStorage.length, cookies: document.cookie }));
      assert.equal(JSON.parse(stored.session).sk, SK);
      assert.equal(stored.local, 0);
      assert.equal(stored.cookies, '');
    });

    await check('live tiles update without a reload', async () => {
      const before = await tile(page, DEMO_TASKS[0]);
      await page.waitForFunction(({ id, n }) =>
        Number(document.querySelector(`.tile[data-task="${id}"]`).dataset.eventId) > n,
      { id: DEMO_TASKS[0], n: before.eventId });
      const after = await tile(page, DEMO_TASKS[0]);
      assert.notDeepEqual(values(after), values(before));
    });

    await check('live tiles lie between two batch reads', async () => {
      const earlier = await batch();
      const shown = await Promise.all(DEMO_TASKS.map((id) => tile(page, id)));
      // The stream may lag the store by its coalescing window: let it catch up past `earlier`.
      await new Promise((r) => setTimeout(r, 1500));
      const later = await batch();
      for (const row of shown) {
        const n = Number(row.totalCount);
        assert.ok(n <= Number(later[row.taskId].totalCount), `${row.taskId}: ${n} > later batch`);
      }
      const caughtUp = await Promise.all(DEMO_TASKS.map((id) => tile(page, id)));
      for (const row of caughtUp) {
        assert.ok(Number(row.totalCount) >= Number(earlier[row.taskId].totalCount),
          `${row.taskId}: ${row.totalCount} < earlier batch ${earlier[row.taskId].totalCount}`);
      }
    });

    await check('a task fed by a finished run shows exactly the batch answer', async () => {
      const zero = await tile(page, QUIET);
      assert.equal(zero.totalCount, '0');
      const run = simulateQuietTask();
      await page.waitForFunction((id) =>
        document.querySelector(`.tile[data-task="${id}"] [data-field="totalCount"]`).textContent !== '0', QUIET);
      await run;
      // Every call of the run has ended: once the service has read the last events, nothing is
      // waiting or in progress and the numbers stay.
      let want = (await batch())[QUIET];
      for (let i = 0; i < 600 && !(want.waitCount === '0' && want.execCount === '0'); i += 1) {
        await new Promise((r) => setTimeout(r, 100));
        want = (await batch())[QUIET];
      }
      assert.ok(Number(want.totalCount) >= 8, JSON.stringify(want));
      assert.equal(want.waitCount, '0');
      assert.equal(want.execCount, '0');
      await page.waitForFunction(({ id, want }) => Object.entries(want).every(([f, v]) =>
        f === 'taskId' || document.querySelector(`.tile[data-task="${id}"] [data-field="${f}"]`).textContent === v),
      { id: QUIET, want });
      assert.deepEqual(values(await tile(page, QUIET)), values(want));
    });

    await check('the hourly chart and the causes of the selected task are drawn', async () => {
      await page.click(`.tile[data-task="${DEMO_TASKS[0]}"]`);
      await page.waitForFunction(() => document.querySelectorAll('#chart rect.succ, #chart rect.fail').length > 0
        && document.querySelectorAll('#fail-codes li[data-fail-code]').length > 0);
      assert.equal(await page.textContent('#detail-task'), DEMO_TASKS[0]);
      // Buckets are hours of the service's zone (the demo's: Asia/Shanghai), and the demo's
      // calls all started within the last hour: this hour's bar, or the previous one's.
      const hourIn = (ms) => new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Shanghai', hour: '2-digit',
        hourCycle: 'h23' }).format(new Date(ms)) + ':00';
      const recent = [hourIn(Date.now()), hourIn(Date.now() - 3_600_000)];
      const starts = await page.$$eval('#chart rect[data-start]', (r) => r.map((x) => x.dataset.start));
      assert.ok(starts.length > 0 && starts.every((s) => recent.includes(s)), `bars at ${starts}, not ${recent}`);
      assert.ok(await page.locator('.tile.selected').count() === 1);
    });

    await check('the day picker shows yesterday and a chosen date, for the chart and the causes', async () => {
      const dateIn = (ms) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date(ms));
      const [today, yesterday] = [dateIn(Date.now()), dateIn(Date.now() - 86_400_000)];
      await page.check('#day-picker input[value="yesterday"]');
      await page.waitForFunction((d) => document.getElementById('detail-day').textContent === d, yesterday);
      await page.fill('#day-date', today);
      await page.waitForFunction((d) => document.getElementById('detail-day').textContent === d, today);
      assert.ok(await page.isChecked('#day-picker input[value="date"]'));
      await page.waitForFunction(() => document.querySelectorAll('#chart rect.succ, #chart rect.fail').length > 0
        && document.querySelectorAll('#fail-codes li[data-fail-code]').length > 0);
      await page.check('#day-picker input[value="today"]');
      await page.waitForFunction((d) => document.getElementById('detail-day').textContent === d, today);
    });

    await check('the layout fits a wall screen and a laptop', async () => {
      const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
      assert.ok(await fits(), '1920x1080 scrolls sideways');
      await page.screenshot({ path: path.join(SHOTS, 'wallboard-1920x1080.png') });
      await page.setViewportSize({ width: 1366, height: 768 });
      assert.ok(await fits(), '1366x768 scrolls sideways');
      await page.screenshot({ path: path.join(SHOTS, 'wallboard-1366x768.png') });
    });

    await check('signing out forgets the key', async () => {
      await page.click('#signout');
      assert.equal(await page.evaluate(() => sessionStorage.getItem('realstat.wallboard')), null);
      assert.ok(await page.isVisible('#login'));
    });

    assert.deepEqual(errors, [], 'no errors in the page');
  } finally {
    await browser.close();
  }
  console.log(`${passed} passed, 0 failed`);
}

main().catch((e) => {
  console.log('FAILED');
  console.error(e);
  console.log(`${passed} passed, 1 failed`);
  process.exit(1);
});
