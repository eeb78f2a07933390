// browser.mjs - drives a real headless Chromium (Debian's `chromium`) over
// its DevTools pipe (--remote-debugging-pipe: JSON messages ending in NUL
// on file descriptors 3 and 4), with nothing but Node's standard library:
// no npm package, no network.
//
//   node browser.mjs ui SPEC.json     the UI test (tests/web/test_web_browser.c
//                                     writes SPEC: the server, the workload and
//                                     what the pages must show)
//   node browser.mjs sse-bench SPEC.json
//                                     opens the live page and reports how the page
//                                     kept up while bench_web publishes (stdin: a
//                                     line when the burst is over)
//
// Exit codes: 0 every check passed, 1 a check failed (each failure is
// printed), 77 Chromium could not be started (CTest reports a skip).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';

const SKIP = 77;
const [mode, specPath] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specPath, 'utf8'));
const failures = [];
const sleep = ms => new Promise(r => setTimeout(r, ms));
const log = (...a) => console.error('browser:', ...a);

function check(ok, what) {
  if (ok) log('ok  ', what);
  else { log('FAIL', what); failures.push(what); }
  return ok;
}

// ---- the DevTools pipe ----

class Browser {
  constructor(child) {
    this.child = child;
    this.next = 1;
    this.waiting = new Map();
    this.listeners = [];
    this.gone = null; // why the browser went away (then every request fails at once)
    child.on('exit', code => {
      this.gone = `chromium exited (${code}) during the test`;
      for (const { reject } of this.waiting.values()) reject(new Error(this.gone));
      this.waiting.clear();
    });
    let buf = Buffer.alloc(0);
    child.stdio[4].on('data', chunk => {
      buf = Buffer.concat([buf, chunk]);
      let i;
      while ((i = buf.indexOf(0)) >= 0) {
        const msg = JSON.parse(buf.subarray(0, i).toString('utf8'));
        buf = buf.subarray(i + 1);
        if (msg.id && this.waiting.has(msg.id)) {
          const { resolve, reject, method } = this.waiting.get(msg.id);
          this.waiting.delete(msg.id);
          if (msg.error) reject(new Error(`${method}: ${msg.error.message}`));
          else resolve(msg.result);
        } else if (msg.method) {
          for (const l of this.listeners) l(msg);
        }
      }
    });
  }
  send(method, params = {}, sessionId) {
    if (this.gone) return Promise.reject(new Error(this.gone));
    const id = this.next++;
    const msg = { id, method, params };
    if (sessionId) msg.sessionId = sessionId;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, method });
      this.child.stdio[3].write(JSON.stringify(msg) + '\0');
    });
  }
  on(fn) { this.listeners.push(fn); }
}

async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'naq-chromium-'));
  const args = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
    '--remote-debugging-pipe', `--user-data-dir=${profile}`, '--no-first-run',
    '--no-default-browser-check', '--disable-extensions', '--disable-background-networking',
    '--disable-sync', '--disable-component-update', '--window-size=1280,800', 'about:blank'];
  let child;
  try {
    child = spawn(spec.chromium || 'chromium', args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  } catch (e) {
    return { error: e.message };
  }
  let stderr = '';
  child.stderr.on('data', d => { stderr += d; });
  const failed = new Promise(resolve => {
    child.on('error', e => resolve({ error: e.message }));
    child.on('exit', code => resolve({ error: `chromium exited with ${code}: ${stderr.slice(-2000)}` }));
    // A browser that never started leaves its pipe closed: EPIPE on the first request.
    for (const fd of [3, 4]) child.stdio[fd].on('error', e => resolve({ error: `DevTools pipe: ${e.message}` }));
  });
  const b = new Browser(child);
  const ready = b.send('Browser.getVersion').then(v => ({ browser: b, version: v }));
  const timeout = sleep(30000).then(() => ({ error: 'chromium did not answer on its DevTools pipe within 30 s' }));
  const r = await Promise.race([ready, failed, timeout]);
  r.child = child;
  r.profile = profile;
  return r;
}

// ---- one page ----

class Page {
  constructor(b, sessionId) { this.b = b; this.s = sessionId; }
  send(method, params) { return this.b.send(method, params, this.s); }
  async eval(expr) {
    const r = await this.send('Runtime.evaluate', { expression: expr, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`page: ${r.exceptionDetails.exception?.description || r.exceptionDetails.text}`);
    return r.result.value;
  }
  async waitFor(expr, what, ms = 15000) {
    const end = Date.now() + ms;
    let last;
    while (Date.now() < end) {
      try { last = await this.eval(expr); if (last) { log('ok  ', what); return last; } } catch (e) { last = e.message; }
      await sleep(100);
    }
    check(false, `${what} (waited ${ms} ms; last: ${JSON.stringify(last)})`);
    return null;
  }
  async goto(url) {
    await this.send('Page.navigate', { url });
    await this.waitFor('document.readyState === "complete"', `load ${url}`);
  }
  async viewport(width, height, mobile) {
    await this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: !!mobile });
  }
  async shot(name) {
    const r = await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: false });
    mkdirSync(spec.artifacts, { recursive: true });
    const path = join(spec.artifacts, name);
    writeFileSync(path, Buffer.from(r.data, 'base64'));
    log('screenshot', path);
  }
  // A real mouse click in the middle of the element.
  async click(selector) {
    const box = await this.eval(`(() => { const e = document.querySelector(${JSON.stringify(selector)});
      if (!e) return null; e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();
      return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()`);
    if (!check(box !== null, `element to click: ${selector}`)) return false;
    for (const type of ['mousePressed', 'mouseReleased'])
      await this.send('Input.dispatchMouseEvent', { type, x: box.x, y: box.y, button: 'left', clickCount: 1 });
    return true;
  }
  async key(key, code, keyCode, shift) {
    const base = { key, code, windowsVirtualKeyCode: keyCode, modifiers: shift ? 8 : 0 };
    await this.send('Input.dispatchKeyEvent', { type: 'rawKeyDown', ...base });
    if (key === 'Enter') await this.send('Input.dispatchKeyEvent', { type: 'char', text: '\r', ...base });
    await this.send('Input.dispatchKeyEvent', { type: 'keyUp', ...base });
  }
}

async function openPage(b) {
  const { targetId } = await b.send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await b.send('Target.attachToTarget', { targetId, flatten: true });
  const p = new Page(b, sessionId);
  await p.send('Page.enable');
  await p.send('Runtime.enable');
  // A purge asks for confirmation; the test never purges, but a stray
  // dialog must not hang it.
  b.on(m => { if (m.method === 'Page.javascriptDialogOpening' && m.sessionId === sessionId) p.send('Page.handleJavaScriptDialog', { accept: false }); });
  // Console errors and failed loads are failures: a page that throws is broken.
  p.errors = [];
  b.on(m => {
    if (m.sessionId !== sessionId) return;
    if (m.method === 'Runtime.exceptionThrown') p.errors.push(m.params.exceptionDetails.exception?.description || m.params.exceptionDetails.text);
    if (m.method === 'Runtime.consoleAPICalled' && m.params.type === 'error') p.errors.push(m.params.args.map(a => a.value).join(' '));
  });
  return p;
}

// ---- the accessibility check ----
//
// Not a full audit: the three things the issue names. Labels (every form
// control and button has an accessible name), contrast (every element
// with text: WCAG AA, 4.5:1, or 3:1 for large text, against the first
// opaque background behind it), keyboard (Tab reaches the navigation and
// the page's controls in order, each with a visible focus ring, and Enter
// follows a link).
const A11Y = `(() => {
  const problems = [];
  const name = e => (e.getAttribute('aria-label') || (e.labels && [...e.labels].map(l => l.textContent).join(' ')) || e.textContent || e.title || '').trim();
  if (!document.documentElement.lang) problems.push('html without lang');
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  for (const e of document.querySelectorAll('input, select, textarea')) {
    if (e.type === 'hidden' || e.closest('[hidden]')) continue;
    if (!name(e)) problems.push('unlabelled ' + e.tagName.toLowerCase() + '#' + e.id);
  }
  for (const e of document.querySelectorAll('button, a[href]')) {
    if (e.closest('[hidden]')) continue;
    if (!name(e)) problems.push('nameless ' + e.tagName.toLowerCase());
  }
  for (const e of document.querySelectorAll('svg[role=img]')) if (!e.getAttribute('aria-label')) problems.push('chart without aria-label');
  const rgb = s => { const m = s.match(/rgba?\\(([^)]+)\\)/); if (!m) return null; const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bg = e => { for (let n = e; n; n = n.parentElement) { const c = rgb(getComputedStyle(n).backgroundColor); if (c && c.a > 0.5) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  let checked = 0;
  for (const e of document.querySelectorAll('body *')) {
    if (!e.offsetParent && getComputedStyle(e).position !== 'fixed') continue;
    if (e.closest('svg')) continue;
    const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const cs = getComputedStyle(e);
    const fg = rgb(cs.color), b = bg(e);
    const l1 = lum(fg), l2 = lum(b);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(cs.fontSize), bold = parseInt(cs.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    checked++;
    if (ratio < need) problems.push('contrast ' + ratio.toFixed(2) + ' < ' + need + ' for ' + e.tagName.toLowerCase() + ' "' + e.textContent.trim().slice(0, 30) + '"');
  }
  return {problems: problems.slice(0, 20), checked};
})()`;

async function a11y(p, where) {
  const r = await p.eval(A11Y);
  check(r.problems.length === 0, `accessibility on ${where}: labels and contrast (${r.checked} text elements): ${r.problems.join('; ') || 'no problem'}`);
}

async function keyboard(p) {
  await p.eval('document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); true');
  const seen = [];
  for (let i = 0; i < 12; i++) {
    await p.key('Tab', 'Tab', 9);
    seen.push(await p.eval(`(() => { const e = document.activeElement; const cs = getComputedStyle(e);
      return {tag: e.tagName.toLowerCase(), text: (e.getAttribute('aria-label') || e.textContent || e.id || '').trim().slice(0, 30),
              ring: cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0}; })()`));
  }
  check(seen[0].text === 'Skip to content', `keyboard: the first Tab reaches the skip link (got ${JSON.stringify(seen[0])})`);
  const nav = seen.filter(s => s.tag === 'a').map(s => s.text);
  check(['Overview', 'Queues', 'Job', 'Workers', 'Dead letters', 'Schedules', 'Live events'].every(t => nav.includes(t)),
    `keyboard: Tab reaches every page link in order (${nav.join(', ')})`);
  check(seen.every(s => s.ring), `keyboard: every focused element shows a focus ring (${JSON.stringify(seen.filter(s => !s.ring))})`);
  // Enter on the focused "Dead letters" link opens that page.
  await p.eval('document.querySelector(\'nav a[data-page="dlq"]\').focus(); true');
  await p.key('Enter', 'Enter', 13);
  await p.waitFor('location.hash.startsWith("#/dlq") && !!document.querySelector("h1") && document.querySelector("h1").textContent === "Dead letters"', 'keyboard: Enter on a link opens its page');
}

// ---- the UI test ----

let restarted = null; // the naq web this script started again (the UI test stops it)

async function reachable(base) {
  // A server on its way down may accept a connection and never answer it.
  try { return (await fetch(base + '/api/config', { signal: AbortSignal.timeout(1000) })).ok; } catch (e) { return false; }
}

async function waitUntil(fn, what, ms = 15000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) { log('ok  ', what); return true; }
    await sleep(100);
  }
  check(false, `${what} (waited ${ms} ms)`);
  return false;
}

async function ui(b) {
  const p = await openPage(b);
  const base = spec.base;
  await p.viewport(1280, 800);

  // Overview: the known workload's queues and counts.
  await p.goto(base + '/#/');
  for (const q of spec.queues) {
    const row = await p.waitFor(`(() => { const r = document.querySelector('#queues tr[data-queue=${JSON.stringify(q.queue)}]');
      return r && [...r.cells].map(c => c.textContent); })()`, `overview lists queue ${q.queue}`);
    if (row) {
      check(row[1] === String(q.pending), `overview: ${q.queue} has ${q.pending} pending (shows ${row[1]})`);
      check(JSON.stringify(row.slice(3).map(Number)) === JSON.stringify(q.by_priority), `overview: ${q.queue} by priority ${JSON.stringify(q.by_priority)} (shows ${JSON.stringify(row.slice(3))})`);
    }
  }
  await p.waitFor(`(() => { const t = document.querySelector('#failures'); return t && t.textContent.includes(${JSON.stringify(spec.payload)}); })()`,
    'overview: the failure with markup in its message is listed, as text');
  check(await p.eval('window.__xss === undefined && document.querySelectorAll("script").length === 1 && document.querySelectorAll("main img").length === 0'),
    'overview: the <script> and onerror in an error message did not run and made no element');
  await p.waitFor(`document.querySelector('#live-workers') && document.querySelector('#live-workers').textContent.startsWith(${JSON.stringify(String(spec.live_workers))})`,
    `overview: ${spec.live_workers} live worker(s)`);
  await p.waitFor(`!!document.querySelector('svg.chart rect')`, 'overview: the hourly chart is drawn from the rollups');
  await p.shot('overview-1280.png');
  await a11y(p, 'the overview');
  await keyboard(p);

  // Job: the timeline in order, args and error as text.
  await p.goto(base + '/#/job/' + encodeURIComponent(spec.dead_job));
  const types = await p.waitFor(`(() => { const l = document.querySelectorAll('#timeline li'); return l.length >= ${spec.dead_job_types.length} && [...l].map(li => li.dataset.type); })()`,
    'job page shows the timeline');
  check(JSON.stringify(types) === JSON.stringify(spec.dead_job_types), `job: timeline in stored order ${JSON.stringify(spec.dead_job_types)} (shows ${JSON.stringify(types)})`);
  const times = await p.eval(`[...document.querySelectorAll('#timeline li .t')].map(e => e.textContent)`);
  check(times.every((t, i) => i === 0 || t >= times[i - 1]), 'job: timestamps never go back');
  // The args are shown as JSON, so the payload's quote reads \" there.
  check(await p.eval(`document.querySelector('#job-args').textContent.includes(${JSON.stringify(JSON.stringify(spec.payload).slice(1, -1))})`), 'job: the args show the markup as text');
  check(await p.eval(`[...document.querySelectorAll('#timeline li')].some(li => li.textContent.includes(${JSON.stringify(spec.payload)}))`), 'job: the error in the timeline shows the markup as text');
  check(await p.eval('window.__xss === undefined && document.querySelectorAll("main img, main script").length === 0'), 'job: nothing in the args or error ran');
  await p.shot('job-1280.png');
  // A waiting job's args come from its queue message; a completed job's are gone, and it says so.
  await p.goto(base + '/#/job/' + encodeURIComponent(spec.waiting_job));
  await p.waitFor(`document.querySelector('#job-args') && document.querySelector('#job-args').textContent.includes('"argv"')`,
    'job: a waiting job shows its args from its queue');
  await p.goto(base + '/#/job/' + encodeURIComponent(spec.done_job));
  await p.waitFor(`document.querySelector('#job-args') && document.querySelector('#job-args').textContent.includes('gone')`,
    'job: a completed job says its args are gone');
  await a11y(p, 'the job page');

  // Live events: one enqueued now arrives.
  await p.goto(base + '/#/live?queue=' + encodeURIComponent(spec.live_queue));
  await p.waitFor('window.naqLive && window.naqLive.opened >= 1', 'live: the feed opens');
  await sleep(300);
  const id = execFileSync(spec.naq, ['enqueue', '-q', spec.live_queue, '--', 'true'], { env: { ...process.env, ...spec.env } }).toString().trim();
  await p.waitFor(`(() => { const r = document.querySelector('#live-rows tr[data-type="enqueued"]'); return r && r.textContent.includes(${JSON.stringify(id)}); })()`,
    `live: the enqueued event of ${id} arrives`);
  await p.shot('live-1280.png');
  await a11y(p, 'the live page');

  // The server goes away and comes back; an event logged meanwhile still
  // arrives (EventSource sends Last-Event-ID), and none arrives twice.
  const openedBefore = await p.eval('window.naqLive.opened');
  process.kill(spec.web_pid, 'SIGTERM');
  await waitUntil(async () => !(await reachable(base)), 'the first naq web stops');
  const missed = execFileSync(spec.naq, ['enqueue', '-q', spec.live_queue, '--', 'true'], { env: { ...process.env, ...spec.env } }).toString().trim();
  restarted = spawn(spec.web_argv[0], spec.web_argv.slice(1), { env: { ...process.env, ...spec.env, ...spec.web_env }, stdio: 'ignore' });
  await waitUntil(() => reachable(base), 'naq web is back on the same port');
  await p.waitFor(`(() => { const r = document.querySelector('#live-rows tr[data-type="enqueued"]'); return r && r.textContent.includes(${JSON.stringify(missed)}); })()`,
    `live: after the reconnect, the event logged while the server was down (${missed}) arrives`, 20000);
  check(await p.eval(`window.naqLive.opened > ${openedBefore}`), 'live: the page reconnected by itself');
  const seqs = await p.eval(`[...document.querySelectorAll('#live-rows tr')].map(r => r.dataset.seq)`);
  check(new Set(seqs).size === seqs.length, `live: no event shown twice across the reconnect (${seqs.join(', ')})`);

  // Dead letters: retry one by clicking, the job runs again.
  await p.goto(base + '/#/dlq');
  await p.waitFor(`!!document.querySelector('tr[data-job=${JSON.stringify(spec.dead_job)}] button.retry')`, 'dead letters: the dead job has a retry button');
  await p.eval(`(() => { const t = document.getElementById('token'); t.focus(); t.value = ''; return true; })()`);
  await p.send('Input.insertText', { text: spec.token });
  await p.eval(`document.getElementById('token').dispatchEvent(new Event('change')); true`);
  await a11y(p, 'the dead-letter page');
  writeFileSync(spec.flag_file, 'ok\n'); // the retried job succeeds
  await p.click(`tr[data-job=${JSON.stringify(spec.dead_job)}] button.retry`);
  const note = await p.waitFor(`(() => { const n = document.getElementById('dlq-note'); return n && n.textContent.startsWith('Retried 1') && n.textContent; })()`, 'dead letters: the page says the job was retried');
  await p.shot('dlq-1280.png');
  if (note) {
    const newId = note.split(' as ')[1];
    const state = await p.waitFor(`fetch('/api/jobs/' + encodeURIComponent(${JSON.stringify(newId)})).then(r => r.ok ? r.json() : null).then(j => j && j.state === 'completed' && j.state)`,
      `dead letters: the retried job ${newId} runs again and completes`, 30000);
    check(state === 'completed', 'the retried job completed');
  }
  check(await p.eval(`!document.querySelector('tr[data-job=${JSON.stringify(spec.dead_job)}]')`), 'dead letters: the retried entry left the list');

  // Queues, workers, schedules: what they list, and pausing a schedule.
  await p.goto(base + '/#/queues');
  await p.waitFor(`!!document.querySelector('#queues tr[data-queue=${JSON.stringify(spec.queues[0].queue)}]')`, 'queues: the page lists the queues');
  await a11y(p, 'the queues page');
  await p.goto(base + '/#/workers');
  await p.waitFor(`(() => { const r = document.querySelector('#workers tr[data-worker]'); return r && r.cells[1].textContent === 'idle'; })()`,
    'workers: the live worker is listed, idle');
  await p.shot('workers-1280.png');
  await a11y(p, 'the workers page');
  await p.goto(base + '/#/schedules');
  const runs = await p.waitFor(`(() => { const r = document.querySelector('tr[data-schedule=${JSON.stringify(spec.schedule)}]');
    return r && r.cells[5].textContent.match(/\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d/g); })()`, 'schedules: the schedule shows its next runs');
  check(runs && runs.length === 5 && runs.every((t, i) => i === 0 || t > runs[i - 1]), `schedules: five next runs in order (${JSON.stringify(runs)})`);
  await p.click(`tr[data-schedule=${JSON.stringify(spec.schedule)}] button`);
  await p.waitFor(`(() => { const r = document.querySelector('tr[data-schedule=${JSON.stringify(spec.schedule)}]'); return r && r.cells[4].textContent === 'paused'; })()`,
    'schedules: Pause pauses it');
  await p.shot('schedules-1280.png');
  await a11y(p, 'the schedules page');

  // A phone: 375 px wide, no sideways scrolling of the page.
  await p.viewport(375, 800, true);
  await p.goto(base + '/#/');
  await p.waitFor(`!!document.querySelector('#queues tr[data-queue=${JSON.stringify(spec.queues[0].queue)}]')`, 'phone: the overview shows the queues');
  const width = await p.eval('document.documentElement.scrollWidth');
  check(width <= 375, `phone: the page fits 375 px (scroll width ${width})`);
  await p.shot('overview-375.png');
  await a11y(p, 'the overview at 375 px');
  await p.goto(base + '/#/dlq');
  await p.waitFor('!!document.querySelector("h1")', 'phone: the dead-letter page opens');
  check(await p.eval('document.documentElement.scrollWidth') <= 375, 'phone: the dead-letter page fits 375 px');
  await p.shot('dlq-375.png');
  check(p.errors.length === 0, `no script error in the pages (${p.errors.join(' | ')})`);
  if (restarted) {
    const code = await new Promise(resolve => { restarted.on('exit', c => resolve(c)); restarted.kill('SIGTERM'); });
    check(code === 0, `the restarted naq web stops cleanly on SIGTERM (exit ${code})`);
    restarted = null;
  }
}

// ---- the live-feed benchmark ----

async function sseBench(b) {
  const p = await openPage(b);
  await p.viewport(1280, 800);
  await p.goto(spec.base + '/#/live' + (spec.query ? '?' + spec.query : ''));
  await p.waitFor('window.naqLive && window.naqLive.opened >= 1', 'live: the feed opens');
  await p.eval(`window.__long = []; new PerformanceObserver(l => { for (const e of l.getEntries()) window.__long.push(e.duration); }).observe({entryTypes: ['longtask']}); true`);
  await p.eval('Object.assign(window.naqLive, {maxFrameGapMs: 0, received: 0, messages: 0, frames: 0, rendered: 0, scriptMs: 0, maxDrawMs: 0, since: performance.now()}); true');
  process.stdout.write('ready\n');
  // bench_web publishes now and writes a line when it is done.
  await new Promise(resolve => process.stdin.once('data', resolve));
  const want = spec.expect_events || 0;
  await p.waitFor(`window.naqLive.received >= ${want}`, `live: all ${want} events arrive`, 30000);
  await sleep(500);
  const r = await p.eval(`(() => { const l = window.naqLive; const secs = (performance.now() - l.since) / 1000;
    return {received: l.received, messages: l.messages, rendered: l.rendered, frames: l.frames,
            seconds: +secs.toFixed(2), fps: +(l.frames / secs).toFixed(1),
            max_frame_gap_ms: +l.maxFrameGapMs.toFixed(1), long_tasks: window.__long.length,
            longest_task_ms: Math.max(0, ...window.__long), page_script_ms: +l.scriptMs.toFixed(1),
            page_script_share: +(l.scriptMs / (secs * 1000)).toFixed(4), longest_draw_ms: +l.maxDrawMs.toFixed(1),
            rows: document.querySelectorAll('#live-rows tr').length}; })()`);
  // Responsive meanwhile: a click on Pause is handled at once.
  const t0 = Date.now();
  await p.click('#main .actions button');
  r.click_to_pause_ms = await p.waitFor('window.naqLive.paused', 'live: Pause answers') ? Date.now() - t0 : null;
  process.stdout.write(JSON.stringify(r) + '\n');
  await p.shot('live-bench.png');
}

// ---- main ----

const r = await launch();
if (r.error) {
  console.error(`browser: SKIP: cannot start chromium: ${r.error}`);
  try { r.child && r.child.kill('SIGKILL'); } catch (e) { /* gone */ }
  process.exit(SKIP);
}
log('started', r.version.product);
let code = 0;
try {
  if (mode === 'ui') await ui(r.browser);
  else if (mode === 'sse-bench') await sseBench(r.browser);
  else throw new Error('unknown mode ' + mode);
} catch (e) {
  check(false, 'the run itself: ' + (e.stack || e.message));
}
if (failures.length) {
  console.error(`browser: ${failures.length} check(s) failed:\n  ` + failures.join('\n  '));
  code = 1;
}
if (restarted) restarted.kill('SIGKILL'); // the UI test failed before stopping it
try { await r.browser.send('Browser.close'); } catch (e) { /* already gone */ }
await sleep(200);
try { r.child.kill('SIGKILL'); } catch (e) { /* gone */ }
// Chromium may still be writing its profile for a moment after it exits.
for (let i = 0; i < 20; i++) {
  try { rmSync(r.profile, { recursive: true, force: true }); break; } catch (e) { await sleep(100); }
}
process.exit(code);
