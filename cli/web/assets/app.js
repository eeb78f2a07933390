// naq web: the pages, in plain JavaScript (no framework, no build step).
//
// One rule keeps every value safe to show: the DOM is built with el() and
// text nodes only. Nothing from the server ever goes through innerHTML, so
// a job whose args or error hold "<script>" or quotes shows them as text.
// The Content-Security-Policy (web_server.c) would refuse inline script
// anyway.
'use strict';

const state = {
  config: { allow_actions: false },
  timer: null,      // the current page's refresh timer
  page: null,       // the current page's name
  live: null,       // the live feed, when the live page is open
};

// ---- small helpers ----

// el('td', {class: 'n'}, 'text', childNode, ...): strings become text nodes.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function fmtTime(ts) {
  if (!ts) return '-';
  return new Date(ts * 1000).toISOString().replace('T', ' ').replace('Z', '');
}
function fmtNum(n, digits) {
  if (n === null || n === undefined) return '-';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits === undefined ? 1 : digits });
}
function fmtMs(n) { return n === null || n === undefined ? '-' : fmtNum(n, n < 10 ? 2 : 1) + ' ms'; }
function fmtPct(r) { return r === null || r === undefined ? '-' : (r * 100).toFixed(1) + ' %'; }
function ago(ts) {
  if (!ts) return '-';
  const s = Math.max(0, Date.now() / 1000 - ts);
  return s < 90 ? s.toFixed(0) + ' s ago' : s < 5400 ? (s / 60).toFixed(0) + ' min ago' : (s / 3600).toFixed(1) + ' h ago';
}
function jobLink(id) {
  return id ? el('a', { href: '#/job/' + encodeURIComponent(id) }, id) : '-';
}

function setStatus(msg) { document.getElementById('status').textContent = msg || ''; }

function table(caption, headers, rows, attrs) {
  const head = el('tr', {}, headers.map(h => {
    const [label, cls] = Array.isArray(h) ? h : [h, null];
    return el('th', { scope: 'col', class: cls }, label);
  }));
  const t = el('table', attrs || {}, el('caption', {}, caption), el('thead', {}, head), el('tbody', {}, rows));
  return el('div', { class: 'table-wrap' }, t);
}

function card(label, value, id, small) {
  return el('div', { class: 'card' }, el('p', { class: 'k' }, label), el('p', { class: small ? 'v small' : 'v', id: id }, value));
}

async function api(path, opts) {
  const res = await fetch(path, opts);
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) {
    const msg = body && body.error ? body.error : res.status + ' ' + res.statusText;
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  return body;
}

function token() { return document.getElementById('token').value.trim(); }

// Actions: POST with the bearer token (a header no cross-site form can
// send) and a JSON body.
async function act(path, body) {
  if (!token()) throw new Error('enter the action token first (the one naq web was started with)');
  return api(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token() },
    body: JSON.stringify(body || {}),
  });
}

function show(...nodes) {
  const main = document.getElementById('main');
  main.replaceChildren(...nodes);
}

// Replaces the node with id `id` (kept across refreshes so focus and
// scrolling elsewhere on the page stay put).
// A control that had the keyboard focus keeps it when its region is
// redrawn: the same kind of element with the same label gets the focus.
function replaceById(id, node) {
  node.id = id;
  const old = document.getElementById(id);
  if (!old) return;
  const had = old.contains(document.activeElement) ? document.activeElement : null;
  old.replaceWith(node);
  if (had) {
    const label = e => e.getAttribute('aria-label') || e.textContent;
    const twin = [...node.querySelectorAll(had.tagName)].find(e => label(e) === label(had));
    if (twin) twin.focus({ preventScroll: true });
  }
}

function every(ms, fn) {
  const tick = async () => {
    try { await fn(); setStatus(''); } catch (e) { setStatus(e.message); }
  };
  tick();
  state.timer = setInterval(tick, ms);
}

// ---- overview ----

function chart(series) {
  const w = 720, h = 140, pad = 4;
  const max = Math.max(1, ...series.map(s => s.completed + s.failed));
  const bw = (w - pad * 2) / Math.max(1, series.length);
  const done = series.reduce((a, s) => a + s.completed, 0);
  const failed = series.reduce((a, s) => a + s.failed, 0);
  const label = `Jobs per hour over the last ${series.length} hours: ${done} completed, ${failed} failed`;
  const g = svg('svg', { class: 'chart', viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': label });
  const title = svg('title', {});
  title.textContent = label;
  g.append(title);
  series.forEach((s, i) => {
    const x = pad + i * bw + 1;
    const hc = (h - pad * 2) * s.completed / max;
    const hf = (h - pad * 2) * s.failed / max;
    const rc = svg('rect', { class: 'c', x, y: h - pad - hc, width: Math.max(1, bw - 2), height: hc });
    const rf = svg('rect', { class: 'f', x, y: h - pad - hc - hf, width: Math.max(1, bw - 2), height: hf });
    const tip = svg('title', {});
    tip.textContent = `${fmtTime(s.hour)}: ${s.completed} completed, ${s.failed} failed`;
    rc.append(tip);
    g.append(rc, rf);
  });
  return el('div', {}, g, el('p', { class: 'legend' }, el('span', { class: 'sw c', 'aria-hidden': 'true' }), 'completed',
    el('span', { class: 'sw f', 'aria-hidden': 'true' }), 'failed', ` (hourly, from the rollups)`));
}

function queueRows(queues) {
  return queues.map(q => el('tr', { 'data-queue': q.queue },
    el('td', {}, q.queue), el('td', { class: 'n' }, fmtNum(q.pending, 0)), el('td', { class: 'n' }, fmtNum(q.in_flight, 0)),
    q.by_priority.map(n => el('td', { class: 'n' }, fmtNum(n, 0)))));
}
const PRIORITY_HEADERS = [['lowest', 'n'], ['low', 'n'], ['normal', 'n'], ['high', 'n'], ['critical', 'n']];

function failureRows(failures) {
  return failures.map(f => el('tr', {},
    el('td', {}, fmtTime(f.timestamp)), el('td', {}, jobLink(f.job_id)), el('td', {}, f.queue || '-'),
    el('td', { class: 'n' }, f.attempt || '-'), el('td', { class: 'err' }, (f.error_type ? f.error_type + ': ' : '') + (f.error_message || ''))));
}

async function pageOverview() {
  show(el('h1', {}, 'Overview'), el('div', { id: 'ov' }, el('p', { class: 'muted' }, 'Loading...')));
  every(2000, async () => {
    const d = await api('/api/overview?hours=24');
    const st = d.stats, live = d.live;
    const body = el('div', {},
      el('div', { class: 'cards' },
        card('events/s (10 s)', fmtNum(live.events_per_s)),
        card('completed/s', fmtNum(live.per_s.completed)),
        card('failed/s', fmtNum(live.per_s.failed)),
        card('success rate (24 h)', fmtPct(st.success_rate), 'success-rate'),
        card('jobs run (24 h)', fmtNum(st.runs, 0), 'runs-24h'),
        card('latency p50 / p95 / p99 (1 min)', live.latency.n ? `${fmtMs(live.latency.p50)} / ${fmtMs(live.latency.p95)} / ${fmtMs(live.latency.p99)}` : 'no runs', null, true),
        card('latency p50 / p99 (24 h)', st.duration_ms.n ? `${fmtMs(st.duration_ms.p50)} / ${fmtMs(st.duration_ms.p99)}` : '-', null, true),
        card('live workers', `${d.workers.live} (${d.workers.busy} busy)`, 'live-workers')),
      el('h2', {}, 'Throughput and failures, last 24 hours'),
      chart(d.series),
      st.rollup_lag > 0 ? el('p', { class: 'muted' }, `The rollups are ${fmtNum(st.rollup_lag, 0)} events behind the stream; the newest events are not in the 24 h figures yet.`) : null,
      live.error ? el('p', { class: 'err' }, live.error) : null,
      el('h2', {}, 'Queues'),
      d.queues.length ? table('Jobs waiting (pending) and running (in flight), by priority', [['queue'], ['pending', 'n'], ['in flight', 'n'], ...PRIORITY_HEADERS], queueRows(d.queues), { id: 'queues' })
        : el('p', { class: 'muted' }, 'No queue has a worker consumer yet.'),
      el('h2', {}, 'Recent failures'),
      d.recent_failures.length ? table('One row per failed attempt, newest first', ['time (UTC)', 'job', 'queue', ['attempt', 'n'], 'error'], failureRows(d.recent_failures), { id: 'failures' })
        : el('p', { class: 'muted' }, 'No failure in the recent events.'),
      el('h2', {}, 'Recent jobs'),
      table('Jobs by their latest event, newest first', ['time (UTC)', 'job', 'queue', 'state'], d.recent_jobs.map(j => el('tr', {},
        el('td', {}, fmtTime(j.timestamp)), el('td', {}, jobLink(j.job_id)), el('td', {}, j.queue || '-'), el('td', { class: 'state' }, j.state)))),
      el('p', { class: 'muted' }, `Answered in ${fmtNum(d.took_ms, 1)} ms at ${fmtTime(d.now)} UTC.`));
    replaceById('ov', body);
  });
}

// ---- queues ----

async function pageQueues() {
  show(el('h1', {}, 'Queues'), el('div', { id: 'qs' }, el('p', { class: 'muted' }, 'Loading...')));
  every(2000, async () => {
    const d = await api('/api/queues');
    const es = d.event_stream;
    replaceById('qs', el('div', {},
      d.queues.length ? table('Pending and in flight by priority', [['queue'], ['pending', 'n'], ['in flight', 'n'], ...PRIORITY_HEADERS], queueRows(d.queues), { id: 'queues' })
        : el('p', { class: 'muted' }, 'No queue has a worker consumer yet.'),
      el('h2', {}, 'Event stream consumers'),
      d.event_consumers.length ? table('Durable consumers of the event stream (processors, webhooks) and their lag',
        ['consumer', ['pending', 'n'], ['ack pending', 'n'], ['lag', 'n'], ['redelivered', 'n'], ['last delivered', 'n']],
        d.event_consumers.map(c => el('tr', {}, el('td', {}, c.name), el('td', { class: 'n' }, fmtNum(c.num_pending, 0)),
          el('td', { class: 'n' }, fmtNum(c.ack_pending, 0)), el('td', { class: 'n' }, fmtNum(c.lag, 0)),
          el('td', { class: 'n' }, fmtNum(c.redelivered, 0)), el('td', { class: 'n' }, fmtNum(c.delivered_seq, 0)))))
        : el('p', { class: 'muted' }, 'No durable consumer reads the event stream.'),
      el('h2', {}, 'Event stream'),
      el('div', { class: 'cards' }, card('stream', es.name), card('events', fmtNum(es.messages, 0)), card('last sequence', fmtNum(es.last_seq, 0)),
        card('rollup lag', fmtNum(es.rollup_lag, 0)))));
  });
}

// ---- job ----

function eventDetail(e) {
  if (e.error_type || e.error_message) return (e.error_type ? e.error_type + ': ' : '') + (e.error_message || '');
  if (e.duration_ms !== undefined) return fmtMs(e.duration_ms);
  return e.message || '';
}

function jsonBlock(label, value, id) {
  const text = value === null || value === undefined ? '(none)' : typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  return el('section', {}, el('h2', {}, label), el('pre', { id: id }, text));
}

// Why a job shows no args (GET /api/jobs/<id>, args_missing; docs/web.md).
const ARGS_MISSING = {
  not_in_queue: '(gone: the job left its queue when a worker acknowledged it, completed or cancelled; only a dead letter keeps them)',
  not_enqueued: '(not in a queue yet: delayed or waiting for its dependencies)',
  scan_limit: '(not read: over 1000 jobs wait ahead of it in its queue)',
  unreadable: '(its queue message is not a job naq can read)',
  unavailable: '(the server did not answer; reload to try again)',
};
function argsMissing(why) {
  return ARGS_MISSING[why] || null;
}

async function pageJob(id) {
  const input = el('input', { id: 'job-id', name: 'job', value: id || '', required: true, autocomplete: 'off', spellcheck: 'false' });
  const form = el('form', { class: 'filters', role: 'search', onsubmit: ev => {
    ev.preventDefault();
    location.hash = '#/job/' + encodeURIComponent(input.value.trim());
  } }, el('label', { for: 'job-id' }, 'Job id', input), el('button', { type: 'submit' }, 'Show'));
  const out = el('div', { id: 'job' });
  show(el('h1', {}, 'Job'), form, out);
  if (!id) { input.focus(); return; }
  const load = async () => {
    const d = await api('/api/jobs/' + encodeURIComponent(id));
    replaceById('job', el('div', {},
      el('div', { class: 'cards' }, card('job', d.job_id), card('state', d.state, 'job-state'), card('queue', d.queue || '-'),
        card('events', String(d.events.length))),
      el('h2', {}, 'Timeline'),
      el('ol', { class: 'timeline', id: 'timeline' }, d.events.map(e => el('li', { 'data-type': e.event_type },
        el('span', { class: 't' }, fmtTime(e.timestamp)), ' ',
        el('strong', {}, e.event_type), ' ',
        e.gap_ms > 0 ? el('span', { class: 'gap' }, `+${fmtMs(e.gap_ms)} `) : null,
        e.worker_id ? el('span', { class: 'muted' }, `on ${e.worker_id} `) : null,
        e.attempt ? el('span', { class: 'muted' }, `attempt ${e.attempt} `) : null,
        el('span', { class: e.error_type ? 'err' : '' }, eventDetail(e))))),
      jsonBlock('Args', d.args === null ? argsMissing(d.args_missing) : d.args, 'job-args'),
      jsonBlock('Result', d.result, 'job-result'),
      d.dead_letter ? el('section', {}, el('h2', {}, 'Dead letter'),
        el('p', {}, `Sequence ${d.dead_letter.seq}, ${d.dead_letter.attempts} attempts, failed at ${fmtTime(d.dead_letter.failed_at)}: `,
          el('span', { class: 'err' }, (d.dead_letter.error_type ? d.dead_letter.error_type + ': ' : '') + d.dead_letter.error_message)),
        el('a', { href: '#/dlq' }, 'Dead letters')) : null));
  };
  try { await load(); } catch (e) {
    replaceById('job', el('p', { class: 'err' }, e.status === 404 ? `No events for job ${id}: ${e.message}` : e.message));
  }
  state.timer = setInterval(() => load().catch(e => setStatus(e.message)), 3000);
}

// ---- workers ----

async function pageWorkers() {
  show(el('h1', {}, 'Workers'), el('div', { id: 'ws' }, el('p', { class: 'muted' }, 'Loading...')));
  every(2000, async () => {
    const d = await api('/api/workers?gone_hours=1');
    const row = w => el('tr', { 'data-worker': w.worker_id },
      el('td', {}, w.worker_id), el('td', { class: 'state' }, w.status), el('td', {}, (w.queues || []).join(', ')),
      el('td', { class: 'n' }, `${w.active_jobs || 0} / ${w.concurrency || 0}`),
      el('td', {}, (w.current_job_ids || []).length ? (w.current_job_ids || []).map((j, i) => [i ? ', ' : '', jobLink(j)]) : '-'),
      el('td', { class: 'n' }, fmtNum(w.processed, 0)), el('td', { class: 'n' }, fmtNum(w.failed, 0)),
      el('td', {}, ago(w.live ? w.last_heartbeat : w.last_seen)), el('td', {}, `${w.hostname || '-'} pid ${w.pid || '-'}`));
    const headers = ['worker', 'state', 'queues', ['running', 'n'], 'current jobs', ['done', 'n'], ['failed', 'n'], 'heartbeat', 'host'];
    replaceById('ws', el('div', {},
      d.workers.length ? table('Live workers (the registry; an entry expires 3 heartbeats after the last)', headers, d.workers.map(row), { id: 'workers' })
        : el('p', { class: 'muted' }, 'No live worker.'),
      el('h2', {}, 'Gone in the last hour'),
      d.gone.length ? table('Workers that stopped or were lost', headers, d.gone.map(row)) : el('p', { class: 'muted' }, 'None.')));
  });
}

// ---- dead letters ----

async function pageDlq() {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const fields = [['queue', 'Queue'], ['error_type', 'Error type'], ['job', 'Job id']].map(([name, label]) =>
    el('label', { for: 'dlq-' + name }, label, el('input', { id: 'dlq-' + name, name, value: q.get(name) || '', autocomplete: 'off' })));
  const form = el('form', { class: 'filters', role: 'search', onsubmit: ev => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const f of form.querySelectorAll('input')) if (f.value.trim()) p.set(f.name, f.value.trim());
    location.hash = '#/dlq' + (p.toString() ? '?' + p : '');
  } }, fields, el('button', { type: 'submit' }, 'Filter'));
  const out = el('div', { id: 'dlq' }, el('p', { class: 'muted' }, 'Loading...'));
  show(el('h1', {}, 'Dead letters'), form, el('p', { id: 'dlq-note', role: 'status' }), out);

  const selected = () => [...document.querySelectorAll('input.pick:checked')].map(c => Number(c.value));
  const run = async (what, seqs) => {
    try {
      const r = await act('/api/dlq/' + what, { seqs });
      const errs = (r.errors || []).map(e => `#${e.seq}: ${e.error}`).join('; ');
      setStatus(errs);
      const note = document.getElementById('dlq-note');
      if (note) note.textContent = what === 'retry' ? `Retried ${r.retried.length}: ` + r.retried.map(x => `${x.job_id} as ${x.new_job_id}`).join(', ')
        : `Purged ${r.purged}.`;
      await load();
    } catch (e) { setStatus(e.message); }
  };
  const load = async () => {
    const d = await api('/api/dlq?' + q.toString());
    const can = state.config.allow_actions;
    const rows = d.entries.map(e => {
      const details = el('tr', { hidden: true }, el('td', { colspan: can ? 9 : 8 }, el('pre', {}, '')));
      const showBtn = el('button', { type: 'button', class: 'secondary', 'aria-expanded': 'false', onclick: async () => {
        const open = details.hidden;
        details.hidden = !open;
        showBtn.setAttribute('aria-expanded', String(open));
        if (open) {
          try { const full = await api('/api/dlq/' + e.seq); details.querySelector('pre').textContent = JSON.stringify(full.job, null, 2); } catch (err) { setStatus(err.message); }
        }
      } }, 'Show');
      return [el('tr', { 'data-seq': e.seq, 'data-job': e.job_id },
        can ? el('td', {}, el('input', { type: 'checkbox', class: 'pick', value: e.seq, 'aria-label': `Select dead letter ${e.seq} (job ${e.job_id})` })) : null,
        el('td', { class: 'n' }, e.seq), el('td', {}, jobLink(e.job_id)), el('td', {}, e.queue), el('td', {}, e.function),
        el('td', { class: 'err' }, (e.error_type ? e.error_type + ': ' : '') + e.error_message), el('td', { class: 'n' }, e.attempts),
        el('td', {}, fmtTime(e.failed_at)),
        el('td', {}, el('div', { class: 'actions' }, showBtn,
          can ? el('button', { type: 'button', class: 'retry', 'aria-label': `Retry job ${e.job_id}`, onclick: () => run('retry', [e.seq]) }, 'Retry') : null))), details];
    });
    const bulk = can && d.entries.length ? el('div', { class: 'actions' },
      el('button', { type: 'button', onclick: () => { const s = selected(); if (s.length) run('retry', s); else setStatus('tick the dead letters to retry first'); } }, 'Retry selected'),
      el('button', { type: 'button', class: 'danger', onclick: () => {
        const s = selected();
        if (!s.length) { setStatus('tick the dead letters to purge first'); return; }
        if (confirm(`Delete ${s.length} dead letter(s) for good?`)) run('purge', s);
      } }, 'Purge selected')) : null;
    replaceById('dlq', el('div', {},
      d.entries.length ? [bulk, table(`${d.total} dead letter(s)${d.more ? `, the newest ${d.entries.length} shown` : ''}`,
        [can ? el('span', { class: 'muted' }, 'pick') : null, ['seq', 'n'], 'job', 'queue', 'function', 'error', ['attempts', 'n'], 'failed at (UTC)', 'actions'].filter(Boolean),
        rows, { id: 'dlq-table' })]
        : el('p', { class: 'muted' }, 'No dead letter matches.'),
      can ? null : el('p', { class: 'muted' }, 'Read-only: start naq web with --allow-actions to retry or purge.'),
      el('button', { type: 'button', class: 'secondary', onclick: () => load().catch(e => setStatus(e.message)) }, 'Refresh')));
  };
  try { await load(); } catch (e) { setStatus(e.message); }
}

// ---- schedules ----

function scheduleSpec(s) {
  if (s.kind === 'cron') return `cron ${s.cron}${s.tz ? ' (' + s.tz + ')' : ''}`;
  if (s.kind === 'every') return `every ${fmtNum(s.every_ms / 1000, 3)} s`;
  return `at ${fmtTime(s.at)}`;
}

async function pageSchedules() {
  show(el('h1', {}, 'Schedules'), el('div', { id: 'sch' }, el('p', { class: 'muted' }, 'Loading...')));
  const load = async () => {
    const d = await api('/api/schedules');
    const can = state.config.allow_actions;
    const rows = d.schedules.map(s => el('tr', { 'data-schedule': s.name },
      el('td', {}, s.name), el('td', {}, scheduleSpec(s)), el('td', {}, s.queue), el('td', {}, s.function),
      el('td', { class: 'state' }, s.paused ? 'paused' : (s.next_runs.length ? 'active' : 'finished')),
      el('td', {}, s.next_runs.length ? s.next_runs.map((t, i) => [i ? el('br') : null, fmtTime(t)]) : '-'),
      el('td', {}, fmtTime(s.last_run)),
      can ? el('td', {}, el('button', { type: 'button', class: 'secondary', onclick: async () => {
        try { await act(`/api/schedules/${encodeURIComponent(s.name)}/${s.paused ? 'resume' : 'pause'}`); await load(); setStatus(''); } catch (e) { setStatus(e.message); }
      } }, s.paused ? `Resume ${s.name}` : `Pause ${s.name}`)) : null));
    replaceById('sch', el('div', {},
      d.schedules.length ? table('Schedules and their next due times (UTC)', ['name', 'when', 'queue', 'function', 'state', 'next runs', 'last run', can ? 'action' : null].filter(Boolean), rows, { id: 'schedules' })
        : el('p', { class: 'muted' }, 'No schedule. Add one with naq schedule add.'),
      el('button', { type: 'button', class: 'secondary', onclick: () => load().catch(e => setStatus(e.message)) }, 'Refresh')));
  };
  every(5000, load);
}

// ---- live events ----
//
// At thousands of events a second the page must not build a row per
// event as it arrives: messages are queued, and at most every RENDER_MS
// (in an animation frame) the newest ROWS of the queue become rows in one
// fragment; older rows fall off the end. The table has a fixed layout, so
// adding rows never re-measures the columns. window.naqLive exposes the
// counters (tests and bench_web read them).

const ROWS = 200;
const RENDER_MS = 100;
// The common ones, as suggestions; any wire name works (naq events types).
const EVENT_TYPES = ['enqueued', 'dequeued', 'started', 'completed', 'failed', 'cancelled', 'timeout',
  'retry_scheduled', 'max_retries_exceeded', 'scheduled', 'schedule_triggered', 'worker_started',
  'worker_stopped', 'worker_heartbeat', 'worker_error', 'scheduler_leader_elected', 'system_error'];

function pageLive() {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const fields = [['job', 'Job id'], ['type', 'Event type'], ['queue', 'Queue'], ['worker', 'Worker']].map(([name, label]) =>
    el('label', { for: 'live-' + name }, label, el('input', { id: 'live-' + name, name, value: q.get(name) || '', autocomplete: 'off', list: name === 'type' ? 'event-types' : null })));
  const types = el('datalist', { id: 'event-types' }, EVENT_TYPES.map(t => el('option', { value: t })));
  const form = el('form', { class: 'filters', role: 'search', onsubmit: ev => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const f of form.querySelectorAll('input')) if (f.value.trim()) p.set(f.name, f.value.trim());
    location.hash = '#/live' + (p.toString() ? '?' + p : '');
  } }, fields, types, el('button', { type: 'submit' }, 'Apply'));
  const pause = el('button', { type: 'button', class: 'secondary', 'aria-pressed': 'false' }, 'Pause');
  const counters = el('p', { id: 'live-counters', class: 'muted', 'aria-live': 'off' }, 'Connecting...');
  const tbody = el('tbody', { id: 'live-rows' });
  const cols = [['seq', 'c-seq'], ['time (UTC)', 'c-time'], ['type', 'c-type'], ['job', 'c-job'], ['queue', 'c-queue'], ['worker', 'c-worker'], ['detail', 'c-detail']];
  const t = el('div', { class: 'table-wrap' }, el('table', { class: 'live-table' }, el('caption', {}, `The newest ${ROWS} events, newest first`),
    el('colgroup', {}, cols.map(([, c]) => el('col', { class: c }))),
    el('thead', {}, el('tr', {}, cols.map(([h]) => el('th', { scope: 'col' }, h)))), tbody));
  show(el('h1', {}, 'Live events'), form, el('div', { class: 'actions' }, pause), counters, t);

  const params = new URLSearchParams(q);
  params.set('tail', '50');
  params.set('batch', '1'); // one message per write: a data line per event
  // Counters for tests and bench_web: scriptMs is the time this page's own
  // code took (message handling and drawing), maxDrawMs its longest draw.
  const live = { received: 0, messages: 0, rendered: 0, lastSeq: 0, paused: false, pending: [], frames: 0, maxFrameGapMs: 0,
    lastFrame: 0, errors: 0, opened: 0, since: performance.now(), scriptMs: 0, maxDrawMs: 0 };
  window.naqLive = live;
  const es = new EventSource('/api/events/stream?' + params.toString());
  live.es = es;
  state.live = live;
  pause.addEventListener('click', () => {
    live.paused = !live.paused;
    pause.textContent = live.paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(live.paused));
  });
  es.addEventListener('open', () => { live.opened++; setStatus(''); });
  es.addEventListener('naq', m => {
    const t0 = performance.now();
    const lines = m.data.split('\n');
    live.received += lines.length;
    live.messages++;
    live.lastSeq = Number(m.lastEventId) || live.lastSeq;
    for (const l of lines) live.pending.push(l);
    if (live.pending.length > ROWS * 4) live.pending.splice(0, live.pending.length - ROWS); // only the newest can be shown
    live.scriptMs += performance.now() - t0;
  });
  es.addEventListener('error', m => {
    live.errors++;
    if (m.data) { try { setStatus('live feed: ' + JSON.parse(m.data).error); } catch (e) { /* not ours */ } }
    else setStatus('live feed: reconnecting (it resumes after event ' + live.lastSeq + ')');
  });
  const frame = now => {
    if (state.live !== live) return;
    if (live.lastFrame) live.maxFrameGapMs = Math.max(live.maxFrameGapMs, now - live.lastFrame);
    live.lastFrame = now;
    live.frames++;
    // A burst that replaces every row is drawn less often: nobody reads
    // 5,000 rows a second, and the page stays responsive.
    const every = live.busy ? RENDER_MS * 3 : RENDER_MS;
    if (live.pending.length && !live.paused && now - (live.lastRender || 0) >= every) {
      live.lastRender = now;
      const t0 = performance.now();
      live.busy = live.pending.length >= ROWS;
      const batch = live.pending.splice(0, live.pending.length).slice(-ROWS);
      const frag = document.createDocumentFragment();
      for (let i = batch.length - 1; i >= 0; i--) {
        let e;
        try { e = JSON.parse(batch[i]); } catch (err) { continue; }
        frag.append(el('tr', { 'data-seq': e.nats_sequence, 'data-type': e.event_type },
          el('td', {}, e.nats_sequence), el('td', {}, fmtTime(e.timestamp)), el('td', {}, e.event_type),
          el('td', {}, jobLink(e.job_id)), el('td', {}, e.queue_name || '-'), el('td', {}, e.worker_id || '-'),
          el('td', { class: 'detail' + (e.error_type ? ' err' : '') }, eventDetail(e))));
        live.rendered++;
      }
      if (batch.length >= ROWS) tbody.replaceChildren(frag);
      else {
        tbody.prepend(frag);
        while (tbody.childElementCount > ROWS) tbody.lastElementChild.remove();
      }
      const took = performance.now() - t0;
      live.scriptMs += took;
      live.maxDrawMs = Math.max(live.maxDrawMs, took);
    }
    if (live.frames % 30 === 0) {
      const secs = (performance.now() - live.since) / 1000;
      counters.textContent = `${live.received} event${live.received === 1 ? '' : 's'} received (${fmtNum(live.received / Math.max(secs, 0.001), 0)}/s on average), last sequence ${live.lastSeq}${live.paused ? ', paused' : ''}`;
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

// ---- routing ----

const pages = {
  overview: pageOverview, queues: pageQueues, job: pageJob, workers: pageWorkers,
  dlq: pageDlq, schedules: pageSchedules, live: pageLive,
};

function route() {
  clearInterval(state.timer);
  state.timer = null;
  if (state.live) { state.live.es.close(); state.live = null; }
  setStatus('');
  const hash = location.hash.replace(/^#\/?/, '');
  const [path] = hash.split('?');
  const parts = path.split('/');
  const name = parts[0] && pages[parts[0]] ? parts[0] : 'overview';
  state.page = name;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  document.title = `naq: ${document.querySelector(`nav a[data-page="${name}"]`).textContent}`;
  const arg = parts.length > 1 ? decodeURIComponent(parts.slice(1).join('/')) : undefined;
  Promise.resolve(pages[name](arg)).catch(e => setStatus(e.message));
}

async function start() {
  const tok = document.getElementById('token');
  tok.value = sessionStorage.getItem('naq-token') || '';
  tok.addEventListener('change', () => sessionStorage.setItem('naq-token', tok.value.trim()));
  try {
    state.config = await api('/api/config');
  } catch (e) { setStatus(e.message); }
  document.getElementById('token-box').hidden = !state.config.allow_actions;
  window.addEventListener('hashchange', () => { route(); document.getElementById('main').focus({ preventScroll: true }); });
  route();
}

document.addEventListener('DOMContentLoaded', start);
