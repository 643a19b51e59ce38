// @ts-check
// The chat page: the DOM on one side, the public WebSocket protocol (DESIGN.md section 4) on
// the other. Everything the page knows about the server it learns from /v1/models and from
// frames on /v1/ws, so the page doubles as a reference client.
import { Connection } from './connection.js';
import { CanvasTracker, readStep } from './canvas.js';
import { formatStats, readUsage, replyStats } from './stats.js';

/** @param {string} id */
function $(id) {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`page is missing #${id}`);
  return el;
}

const els = {
  status: $('status'),
  retry: /** @type {HTMLButtonElement} */ ($('retry')),
  banner: $('banner'),
  messages: $('messages'),
  composer: /** @type {HTMLFormElement} */ ($('composer')),
  prompt: /** @type {HTMLTextAreaElement} */ ($('prompt')),
  send: /** @type {HTMLButtonElement} */ ($('send')),
  stop: /** @type {HTMLButtonElement} */ ($('stop')),
  model: /** @type {HTMLSelectElement} */ ($('model')),
  modelInfo: $('model-info'),
  sampler: /** @type {HTMLInputElement} */ ($('sampler')),
  samplers: $('samplers'),
  steps: /** @type {HTMLInputElement} */ ($('steps')),
  blockSize: /** @type {HTMLInputElement} */ ($('block-size')),
  temperature: /** @type {HTMLInputElement} */ ($('temperature')),
  maxTokens: /** @type {HTMLInputElement} */ ($('max-tokens')),
  streamSteps: /** @type {HTMLInputElement} */ ($('stream-steps')),
  raw: /** @type {HTMLInputElement} */ ($('raw')),
  ignoreEos: /** @type {HTMLInputElement} */ ($('ignore-eos')),
  newChat: /** @type {HTMLButtonElement} */ ($('new-chat')),
  apiKey: /** @type {HTMLInputElement} */ ($('api-key')),
};

// Samplers the engine knows, offered when /v1/models does not list a model's own.
const KNOWN_SAMPLERS = ['ddpm', 'ddpm_cache', 'first_hitting', 'confidence_topk', 'confidence_threshold', 'confidence_factor', 'entropy_bound'];
/** Families with [MASK] positions the server can propose drafts for (stream_drafts). */
const DRAFTING_FAMILIES = ['mdlm', 'bd3lm', 'e2d2'];

/** @typedef {{ id: string, samplers?: string[], mask_id?: number | null, family?: string, max_model_len?: number, max_length?: number }} ModelEntry */
/** @type {ModelEntry[]} */
let models = [];

/** @type {{ role: string, content: string }[]} */
let history = [];

/**
 * @typedef {{ id: string, li: HTMLElement, text: HTMLElement, startedAt: number, firstBlockAt: number | null,
 *   tokensSeen: number, content: string, finished: boolean, raw: boolean, userContent: string,
 *   canvas: CanvasView | null }} Reply
 */
/** @type {Reply | null} */
let current = null;
let counter = 0;
let lostOnce = false;
/** Ids of replies that ended here; a late frame for one (say, a stop that crossed `done`) is moot. */
const ended = new Set();

// ---- connection ----

// A server started with API keys wants one: HTTP takes it as a Bearer header, the WebSocket
// (whose browser API cannot set headers) as the api_key query parameter. It may come in the
// page's own URL (?api_key=...) or the field; it is kept for this tab only.
const params = new URLSearchParams(location.search);
els.apiKey.value = params.get('api_key') ?? sessionStorage.getItem('dlm-api-key') ?? '';
function apiKey() {
  return els.apiKey.value.trim();
}
function wsUrl() {
  const key = apiKey();
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws${key ? `?api_key=${encodeURIComponent(key)}` : ''}`;
}
els.apiKey.addEventListener('change', () => {
  sessionStorage.setItem('dlm-api-key', apiKey());
  if (current !== null) fail(current, 'connection_lost', 'reconnecting with the new API key');
  conn.reconnect();
  void loadModels();
});

const conn = new Connection(wsUrl, {
  onStatus(s) {
    els.status.dataset.state = s.state;
    if (s.state === 'open') {
      els.status.textContent = 'connected';
      els.retry.hidden = true;
      hideBanner();
      // A server that came back may serve another model.
      if (lostOnce) void loadModels();
    } else if (s.state === 'connecting') {
      els.status.textContent = 'connecting…';
    } else {
      els.status.textContent = `${s.reason}: retrying in ${(s.retryInMs / 1000).toFixed(1)} s (attempt ${s.attempt})`;
      els.retry.hidden = false;
    }
    updateButtons();
  },
  onLost(reason) {
    showBanner(`${reason}. Reconnecting…`);
    lostOnce = true;
    if (current !== null) fail(current, 'connection_lost', `${reason}; the reply was interrupted`);
  },
  onFrame: onFrame,
});

els.retry.addEventListener('click', () => conn.retryNow());

/** @param {string} text */
function showBanner(text) {
  els.banner.textContent = text;
  els.banner.hidden = false;
}
function hideBanner() {
  els.banner.hidden = true;
}

function updateButtons() {
  const busy = current !== null;
  els.send.disabled = busy || !conn.open;
  els.send.hidden = busy;
  els.stop.hidden = !busy;
}

// ---- models and settings ----

async function loadModels() {
  try {
    const key = apiKey();
    const res = await fetch('/v1/models', key ? { headers: { Authorization: `Bearer ${key}` } } : {});
    if (res.status === 401) throw new Error('the server wants an API key (field on the left)');
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = await res.json();
    models = Array.isArray(body.data) ? body.data : [];
  } catch (err) {
    showBanner(`could not list models: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  const chosen = els.model.value;
  els.model.replaceChildren(...models.map((m) => new Option(m.id, m.id)));
  if (models.some((m) => m.id === chosen)) els.model.value = chosen;
  describeModel();
}

function selectedModel() {
  return models.find((m) => m.id === els.model.value) ?? null;
}

function describeModel() {
  const m = selectedModel();
  const samplers = m !== null && Array.isArray(m.samplers) && m.samplers.length > 0 ? m.samplers : KNOWN_SAMPLERS;
  els.samplers.replaceChildren(...samplers.map((s) => new Option(s)));
  const facts = [];
  if (m?.family) facts.push(m.family);
  const context = m?.max_model_len ?? m?.max_length;
  if (context) facts.push(`context ${context}`);
  els.modelInfo.textContent = facts.join(' · ');
}
els.model.addEventListener('change', describeModel);

/**
 * The settings object of a `generate` frame: only what the user set, so that the server's
 * per-model defaults apply to the rest (a block size sent to a model without blocks is an
 * error, rightly). A server serves one model, so the model control names the one that
 * /v1/models lists rather than choosing among several.
 * @returns {Record<string, unknown>}
 */
function settings() {
  /** @type {Record<string, unknown>} */
  const s = {};
  /** @param {HTMLInputElement} el @param {string} name */
  const number = (el, name) => {
    if (el.value.trim() !== '') s[name] = Number(el.value);
  };
  if (els.sampler.value.trim() !== '') s.sampler = els.sampler.value.trim();
  number(els.steps, 'steps');
  number(els.blockSize, 'block_size');
  number(els.temperature, 'temperature');
  number(els.maxTokens, 'max_tokens');
  if (els.streamSteps.checked) s.stream_steps = true;
  if (els.streamSteps.checked && DRAFTING_FAMILIES.includes(selectedModel()?.family ?? '')) s.stream_drafts = true;
  if (els.ignoreEos.checked) s.ignore_eos = true;
  return s;
}

// ---- sending ----

els.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  send();
});
els.prompt.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) {
    ev.preventDefault();
    send();
  }
});
els.stop.addEventListener('click', () => {
  if (current === null) return;
  // The server answers with done(finish_reason 'cancelled'); the reply keeps what it had.
  if (!conn.send({ type: 'cancel', id: current.id })) fail(current, 'not_connected', 'not connected');
});
els.newChat.addEventListener('click', () => {
  if (current !== null) return;
  history = [];
  els.messages.replaceChildren();
});

function send() {
  const content = els.prompt.value;
  if (current !== null || content.trim() === '' || !conn.open) return;
  const raw = els.raw.checked;
  const id = `c${++counter}-${Date.now().toString(36)}`;
  const messages = [...history, { role: 'user', content }];
  /** @type {Record<string, unknown>} */
  const frame = { type: 'generate', id, settings: settings() };
  if (raw) frame.prompt = content;
  else frame.messages = messages;

  addMessage('user', content);
  const li = addMessage('assistant', '');
  current = {
    id, li, text: /** @type {HTMLElement} */ (li.querySelector('.text')),
    startedAt: performance.now(), firstBlockAt: null, tokensSeen: 0, content: '',
    finished: false, raw, userContent: content,
    canvas: els.streamSteps.checked ? new CanvasView(li) : null,
  };
  li.dataset.id = id;
  li.dataset.state = 'streaming';
  els.prompt.value = '';
  if (!conn.send(frame)) fail(current, 'not_connected', 'not connected');
  updateButtons();
}

/**
 * @param {'user' | 'assistant'} role
 * @param {string} text
 */
function addMessage(role, text) {
  const li = document.createElement('li');
  li.className = `msg ${role}`;
  li.dataset.testid = `msg-${role}`;
  const body = document.createElement('div');
  body.className = 'text';
  body.textContent = text;
  li.append(body);
  els.messages.append(li);
  li.scrollIntoView({ block: 'end' });
  return li;
}

// ---- receiving ----

/** @param {Record<string, unknown>} frame */
function onFrame(frame) {
  const reply = current !== null && frame.id === current.id ? current : null;
  if (frame.type === 'error') {
    const code = String(frame.code ?? 'error');
    const param = typeof frame.param === 'string' ? ` (${frame.param})` : '';
    const message = `${String(frame.message ?? '')}${param}`;
    // An error for no generation of ours (a bad frame, the engine down) is still the user's to see.
    if (reply !== null) fail(reply, code, message);
    else if (!ended.has(frame.id)) showBanner(`server error ${code}: ${message}`);
    return;
  }
  if (reply === null) return; // a late frame for a reply that already ended
  if (frame.type === 'delta') {
    const text = typeof frame.text === 'string' ? frame.text : '';
    const ids = Array.isArray(frame.token_ids) ? frame.token_ids : Array.isArray(frame.tokens) ? frame.tokens : [];
    if (reply.firstBlockAt === null && (text !== '' || ids.length > 0)) reply.firstBlockAt = performance.now();
    reply.tokensSeen += ids.length;
    reply.content += text;
    reply.text.textContent = reply.content;
    reply.li.scrollIntoView({ block: 'end' });
  } else if (frame.type === 'step') {
    if (reply.canvas === null) reply.canvas = new CanvasView(reply.li);
    reply.canvas.push(frame, selectedModel()?.mask_id ?? null);
  } else if (frame.type === 'done') {
    finish(reply, String(frame.finish_reason ?? 'stop'), frame.usage);
  }
}

/**
 * @param {Reply} reply
 * @param {string} reason
 * @param {unknown} usage
 */
function finish(reply, reason, usage) {
  reply.finished = true;
  reply.li.dataset.state = 'done';
  reply.li.dataset.finish = reason;
  const stats = replyStats({
    startedAt: reply.startedAt, firstBlockAt: reply.firstBlockAt, doneAt: performance.now(),
    usage: readUsage(usage), tokensSeen: reply.tokensSeen,
  });
  const line = document.createElement('div');
  line.className = 'stats';
  line.dataset.testid = 'stats';
  line.textContent = formatStats(stats);
  if (reason !== 'stop') {
    const tag = document.createElement('span');
    tag.className = 'finish';
    tag.textContent = reason === 'cancelled' ? '(stopped)' : reason === 'length' ? '(max tokens)' : `(${reason})`;
    line.append(tag);
  }
  reply.li.append(line);
  reply.canvas?.finish();
  if (!reply.raw) history.push({ role: 'user', content: reply.userContent }, { role: 'assistant', content: reply.content });
  end(reply);
}

/**
 * @param {Reply} reply
 * @param {string} code
 * @param {string} message
 */
function fail(reply, code, message) {
  if (reply.finished) return;
  reply.finished = true;
  reply.li.dataset.state = 'error';
  const box = document.createElement('div');
  box.className = 'error';
  box.dataset.testid = 'error';
  box.dataset.code = code;
  box.textContent = `${code}: ${message}`;
  reply.li.append(box);
  if (reply.content === '') reply.text.hidden = true;
  reply.canvas?.finish();
  end(reply);
}

/** @param {Reply} reply */
function end(reply) {
  ended.add(reply.id);
  if (current === reply) current = null;
  updateButtons();
  els.prompt.focus();
}

// ---- the canvas view ----

/**
 * The denoising canvas of one reply: live while it streams, then a slider to replay every
 * step. Rendering waits for the next animation frame so that fast steps cost one paint each.
 */
class CanvasView {
  /** @param {HTMLElement} li */
  constructor(li) {
    this.tracker = new CanvasTracker();
    /** @type {import('./canvas.js').StepView[]} */
    this.views = [];
    this.follow = true;
    this.pending = false;
    this.root = document.createElement('div');
    this.root.className = 'canvas';
    this.root.dataset.testid = 'canvas';
    const head = document.createElement('div');
    head.className = 'head';
    this.label = document.createElement('span');
    this.label.textContent = 'waiting for the first step…';
    this.slider = document.createElement('input');
    this.slider.type = 'range';
    this.slider.min = '0';
    this.slider.max = '0';
    this.slider.disabled = true;
    this.slider.setAttribute('aria-label', 'denoising step');
    this.slider.addEventListener('input', () => {
      const i = Number(this.slider.value);
      this.follow = i === this.views.length - 1;
      this.render(i);
    });
    head.append(this.label, this.slider);
    this.cells = document.createElement('div');
    this.cells.className = 'cells';
    this.root.append(head, this.cells);
    li.append(this.root);
  }

  /**
   * @param {Record<string, unknown>} frame
   * @param {number | null} maskId
   */
  push(frame, maskId) {
    this.views.push(this.tracker.apply(readStep(frame, maskId)));
    this.root.dataset.steps = String(this.views.length);
    this.slider.max = String(this.views.length - 1);
    this.slider.disabled = this.views.length < 2;
    if (!this.follow || this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      if (this.follow) {
        this.slider.value = this.slider.max;
        this.render(this.views.length - 1);
      }
    });
  }

  finish() {
    if (this.views.length === 0) this.root.remove();
    else if (this.follow) {
      this.slider.value = this.slider.max;
      this.render(this.views.length - 1);
    }
  }

  /** @param {number} i */
  render(i) {
    const view = this.views[i];
    if (view === undefined) return;
    const c = view.counts;
    this.label.textContent = `step ${view.step} (${i + 1}/${this.views.length}) · ${c.masked + c.remasked} masked · ${c.new} new · ${c.revised} replaced · ${c.remasked} masked again`;
    this.cells.replaceChildren(
      ...view.cells.map((cell) => {
        const span = document.createElement('span');
        span.className = `cell ${cell.state}`;
        // A token without text (EOS, padding) still takes its place on the canvas.
        const special = cell.text === '';
        span.textContent = cell.text === null ? cell.draft ?? ' ' : special ? '∅' : cell.text;
        // A masked position shows the model's current proposal, greyed, when the frame has one.
        if (cell.text === null && cell.draft !== null) span.classList.add('draft');
        if (special) span.classList.add('special');
        if (cell.provisional) span.classList.add('provisional');
        span.title = `position ${cell.pos}${special ? ', special token' : ''}${cell.provisional ? ', provisional' : ''}${cell.changes > 0 ? `, changed ${cell.changes}×` : ''}`;
        if (cell.changes > 0) span.dataset.changes = String(cell.changes);
        return span;
      }),
    );
  }
}

// ---- start ----

updateButtons();
void loadModels();
conn.start();
