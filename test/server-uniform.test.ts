// Duo, LDDM-M, LDDM-U and ReMDM end to end: the real server and engine on the shipped models, driven by
// the official openai client (errors checked on the raw HTTP body, as a client sees them).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type OpenAI from 'openai';
import WebSocket from 'ws';
import { scrape, serve, waitIdle, type Served } from './helpers/served.js';
import { openaiClient } from './helpers/openai.js';

const DUO = 'models/zoo/duo-brown';
const LDDM = 'models/zoo/lddm-brown';
const LDDMU = 'models/zoo/lddmu-brown';
const MDLM = 'models/zoo/tiny-mdlm';

interface Server {
  s: Served;
  client: OpenAI;
  model: string;
}

type Kind = 'duo' | 'lddm' | 'lddmu' | 'mdlm';
const servers: Record<Kind, Server> = {} as Record<Kind, Server>;

before(async () => {
  const dirs = { duo: DUO, lddm: LDDM, lddmu: LDDMU, mdlm: MDLM } as const;
  for (const [k, modelDir] of Object.entries(dirs) as [keyof typeof dirs, string][]) {
    const s = await serve({ modelDir });
    servers[k] = { s, client: openaiClient(s.base), model: s.engine.model.name };
  }
});
after(async () => {
  for (const v of Object.values(servers)) await v.s.close();
});

type Body = OpenAI.CompletionCreateParamsNonStreaming & Record<string, unknown>;

async function complete(k: keyof typeof servers, body: Record<string, unknown>): Promise<OpenAI.Completion> {
  const { client, model } = servers[k];
  return client.completions.create({ model, prompt: 'The king said', ...body } as Body);
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function refused(k: keyof typeof servers, body: Record<string, unknown>): Promise<ErrorBody['error']> {
  const { s, model } = servers[k];
  const res = await fetch(`${s.base}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, prompt: 'The', max_tokens: 4, ...body }),
  });
  const json = (await res.json()) as ErrorBody;
  assert.equal(res.status, 400, JSON.stringify(json));
  assert.ok(json.error.message.length > 0);
  return json.error;
}

function nfe(r: OpenAI.Completion): number {
  return (r.usage as unknown as { nfe: number }).nfe;
}

test('the Duo model streams a completion through the openai client', async () => {
  const { client, model } = servers.duo;
  assert.equal(servers.duo.s.engine.model.family, 'duo');
  const stream = await client.completions.create({
    model, prompt: 'The king said', max_tokens: 24, steps: 8, ignore_eos: true, seed: 3, stream: true,
    stream_options: { include_usage: true },
  } as OpenAI.CompletionCreateParamsStreaming & Record<string, unknown>);
  let text = '';
  let chunks = 0;
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const c of stream) {
    if (c.choices[0]) {
      text += c.choices[0].text;
      chunks++;
      finish = c.choices[0].finish_reason ?? finish;
    }
    usage = c.usage ?? usage;
  }
  assert.ok(chunks >= 1);
  assert.ok(text.length > 0);
  assert.equal(finish, 'length');
  assert.equal(usage!.completion_tokens, 24);
  // One window holds all 24 tokens beside the short prompt: 8 steps, 8 network calls.
  assert.equal((usage as unknown as { nfe: number }).nfe, 8);
  // Few-step and greedy-tail samplers give the same count; same seed, same text.
  const again = await complete('duo', { max_tokens: 24, steps: 8, ignore_eos: true, seed: 3 });
  assert.equal(again.choices[0]!.text, text);
  const greedy = await complete('duo', { max_tokens: 24, steps: 4, ignore_eos: true, seed: 3, sampler: 'duo_greedy' });
  assert.equal(nfe(greedy), 4);
});

for (const k of ['duo', 'lddmu'] as const) {
  // LDDM-U rows carry a latent each: packing them into one batch must not mix them up.
  test(`batched ${k === 'duo' ? 'Duo' : 'LDDM-U'} rows give the same tokens as each row alone with the same seed`, async () => {
    const body = (seed: number) => ({ max_tokens: 16, steps: 6, ignore_eos: true, seed, sampler: 'duo' });
    const alone = [await complete(k, body(21)), await complete(k, body(22))];
    await waitIdle(servers[k].s.base);
    const before = await scrape(servers[k].s.base);
    const together = await Promise.all([complete(k, body(21)), complete(k, body(22)), complete(k, body(21))]);
    const after = await waitIdle(servers[k].s.base);
    const calls = after.get('dlm_batch_size_count')! - before.get('dlm_batch_size_count')!;
    const rows = after.get('dlm_batch_size_sum')! - before.get('dlm_batch_size_sum')!;
    assert.ok(rows > calls, `the requests shared network calls (${rows} rows in ${calls} calls)`);
    assert.equal(together[0]!.choices[0]!.text, alone[0]!.choices[0]!.text);
    assert.equal(together[1]!.choices[0]!.text, alone[1]!.choices[0]!.text);
    assert.equal(together[2]!.choices[0]!.text, alone[0]!.choices[0]!.text);
    assert.notEqual(alone[0]!.choices[0]!.text, alone[1]!.choices[0]!.text);
  });
}

test('the LDDM-U model (Duo + loopholing) serves both Duo samplers carrying the latent, and refuses the rest', async () => {
  const m = servers.lddmu.s.engine.model;
  assert.equal(m.family, 'duo');
  assert.deepEqual(m.samplers, ['duo_greedy', 'duo']);
  for (const sampler of ['duo', 'duo_greedy']) {
    const r = await complete('lddmu', { max_tokens: 20, steps: 6, ignore_eos: true, seed: 8, sampler });
    assert.equal(r.usage!.completion_tokens, 20, sampler);
    assert.equal(nfe(r), 6, `${sampler}: one window, one call per step`);
    const again = await complete('lddmu', { max_tokens: 20, steps: 6, ignore_eos: true, seed: 8, sampler });
    assert.equal(again.choices[0]!.text, r.choices[0]!.text, `${sampler}: same seed, same text`);
  }
  const chat = await servers.lddmu.client.chat.completions.create({ model: servers.lddmu.model, messages: [{ role: 'user', content: 'Hello' }], max_completion_tokens: 8, seed: 1 });
  assert.equal(chat.choices[0]!.message.role, 'assistant');
  for (const [body, param] of [
    [{ sampler: 'ddpm' }, 'sampler'],
    [{ sampler: 'remdm' }, 'sampler'],
    [{ sampler: 'confidence_topk' }, 'sampler'],
    [{ remasking: { schedule: 'cap', eta: 0.1 } }, 'remasking'],
    [{ block_size: 128 }, 'block_size'],
  ] as const) {
    assert.equal((await refused('lddmu', body)).param, param, JSON.stringify(body));
  }
  const ok = await complete('lddmu', { max_tokens: 4, steps: 2 });
  assert.ok(ok.usage!.completion_tokens <= 4, 'still serving after the refusals');
});

test('remdm with a remasking setting on an MDLM model', async () => {
  for (const schedule of ['cap', 'rescale', 'conf', 'loop']) {
    const r = await complete('mdlm', { max_tokens: 16, steps: 8, ignore_eos: true, seed: 5, sampler: 'remdm', remasking: { schedule, eta: 0.2 } });
    assert.equal(r.usage!.completion_tokens, 16, schedule);
    assert.equal(nfe(r), 8, `${schedule}: one window of 8 steps`);
    assert.ok(r.choices[0]!.text.length > 0);
  }
  const body = { max_tokens: 16, steps: 8, ignore_eos: true, seed: 5, remasking: { schedule: 'loop', eta: 0.3, t_on: 0.6, t_off: 0.2, alpha_on: 0.8 } };
  // remasking alone picks the remdm sampler; same seed, same text.
  const [a, b] = await Promise.all([complete('mdlm', body), complete('mdlm', { ...body, sampler: 'remdm' })]);
  assert.equal(a.choices[0]!.text, b.choices[0]!.text);
  assert.equal(nfe(a), 8);
  // A strong remasking changes what eta 0 (plain MDLM ancestral sampling) decodes.
  const plain = await complete('mdlm', { ...body, remasking: { schedule: 'rescale', eta: 0 } });
  const strong = await complete('mdlm', { ...body, remasking: { schedule: 'rescale', eta: 1 } });
  assert.notEqual(plain.choices[0]!.text, strong.choices[0]!.text);
});

/** Times a decoded canvas position is [MASK] again in the next step frame. */
function remaskings(frames: Frame[], maskId: number): number {
  const canvases = frames.filter((f) => f.type === 'step').map((f) => f.canvas as number[]);
  let n = 0;
  for (let k = 1; k < canvases.length; k++) {
    canvases[k]!.forEach((tok, i) => {
      if (tok === maskId && canvases[k - 1]![i] !== maskId) n++;
    });
  }
  return n;
}

test('remasking sends decoded tokens back to [MASK]; eta 0 never does', async () => {
  // The texts above could differ without a single remasking (sigma also moves how much mass
  // the masked positions decode with); the canvases show the remasking itself.
  const maskId = servers.mdlm.s.engine.model.maskId!;
  const settings = { max_tokens: 16, steps: 8, ignore_eos: true, seed: 5, stream_steps: true };
  const got = await overWs('mdlm', [
    { id: 'plain', settings: { ...settings, remasking: { schedule: 'rescale', eta: 0 } } },
    { id: 'strong', settings: { ...settings, remasking: { schedule: 'rescale', eta: 1 } } },
  ]);
  for (const id of ['plain', 'strong']) {
    assert.equal(got.get(id)!.filter((f) => f.type === 'step').length, 8, id);
    assert.equal(got.get(id)!.at(-1)!.type, 'done', id);
  }
  assert.equal(remaskings(got.get('plain')!, maskId), 0);
  assert.ok(remaskings(got.get('strong')!, maskId) > 0, 'no decoded token went back to [MASK]');
});

test('the LDDM model serves (ddpm and remdm carry the latent), and refuses samplers that would drop it', async () => {
  const m = servers.lddm.s.engine.model;
  assert.equal(m.family, 'mdlm');
  assert.deepEqual(m.samplers, ['ddpm', 'remdm']);
  const r = await complete('lddm', { max_tokens: 20, steps: 10, ignore_eos: true, seed: 8 });
  assert.equal(r.usage!.completion_tokens, 20);
  assert.equal(nfe(r), 10);
  const again = await complete('lddm', { max_tokens: 20, steps: 10, ignore_eos: true, seed: 8 });
  assert.equal(again.choices[0]!.text, r.choices[0]!.text);
  const rem = await complete('lddm', { max_tokens: 20, steps: 10, ignore_eos: true, seed: 8, remasking: { schedule: 'cap', eta: 0.05 } });
  assert.equal(nfe(rem), 10);
  const chat = await servers.lddm.client.chat.completions.create({ model: servers.lddm.model, messages: [{ role: 'user', content: 'Hello' }], max_completion_tokens: 8, seed: 1 });
  assert.equal(chat.choices[0]!.message.role, 'assistant');
  assert.equal((await refused('lddm', { sampler: 'confidence_topk' })).param, 'sampler');
});

test('bad remasking values and samplers that do not fit the model are a 400 naming the field', async () => {
  const cases: [keyof typeof servers, Record<string, unknown>, string][] = [
    ['mdlm', { sampler: 'remdm', remasking: { schedule: 'sometimes', eta: 0.1 } }, 'remasking.schedule'],
    ['mdlm', { sampler: 'remdm', remasking: { schedule: 'cap', eta: 1.5 } }, 'remasking.eta'],
    ['mdlm', { sampler: 'remdm', remasking: { schedule: 'cap', eta: -0.1 } }, 'remasking.eta'],
    ['mdlm', { sampler: 'remdm', remasking: { schedule: 'loop', eta: 0.1, t_on: 0.3, t_off: 0.5 } }, 'remasking.t_off'],
    ['mdlm', { sampler: 'remdm', remasking: { schedule: 'loop', t_on: 1 } }, 'remasking.t_on'],
    ['mdlm', { sampler: 'remdm', remasking: { schedule: 'loop', alpha_on: 1.5 } }, 'remasking.alpha_on'],
    ['mdlm', { sampler: 'remdm', remasking: { schedule: 'cap', strength: 1 } }, 'remasking.strength'],
    ['mdlm', { sampler: 'ddpm', remasking: { schedule: 'cap', eta: 0.1 } }, 'remasking'],
    ['mdlm', { sampler: 'duo' }, 'sampler'],
    ['duo', { sampler: 'remdm' }, 'sampler'],
    ['duo', { sampler: 'ddpm' }, 'sampler'],
    ['duo', { remasking: { schedule: 'cap', eta: 0.1 } }, 'remasking'],
  ];
  for (const [k, body, param] of cases) {
    const e = await refused(k, body);
    assert.equal(e.param, param, `${k} ${JSON.stringify(body)}: ${e.message}`);
  }
  // Still serving after the refusals.
  const r = await complete('duo', { max_tokens: 4, steps: 2 });
  assert.ok(r.usage!.completion_tokens <= 4);
});

type Frame = { type: string; id: string | null; param?: string; [k: string]: unknown };

/** Sends `generate` frames on one socket and collects each id's frames up to its done or error. */
async function overWs(k: keyof typeof servers, gens: { id: string; settings: Record<string, unknown> }[]): Promise<Map<string, Frame[]>> {
  const ws = new WebSocket(`${servers[k].s.base.replace('http', 'ws')}/v1/ws`);
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  const got = new Map<string, Frame[]>(gens.map((g) => [g.id, []]));
  let open = gens.length;
  const finished = new Promise<void>((resolve) => {
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString('utf8')) as Frame;
      if (f.id === null || !got.has(f.id)) return;
      got.get(f.id)!.push(f);
      if ((f.type === 'done' || f.type === 'error') && --open === 0) resolve();
    });
  });
  for (const g of gens) ws.send(JSON.stringify({ type: 'generate', id: g.id, prompt: 'The king', settings: g.settings }));
  await finished;
  ws.close();
  return got;
}

test('over the WebSocket: Duo streams its steps; bad remasking is an error frame naming the settings field', async () => {
  const duo = await overWs('duo', [
    { id: 'ok', settings: { sampler: 'duo', steps: 4, max_tokens: 8, ignore_eos: true, stream_steps: true, seed: 2 } },
    { id: 'remask', settings: { remasking: { schedule: 'cap', eta: 0.1 } } },
  ]);
  const ok = duo.get('ok')!;
  assert.equal(ok.filter((f) => f.type === 'step').length, 4);
  assert.equal(ok.at(-1)!.type, 'done');
  assert.equal(duo.get('remask')!.at(-1)!.param, 'settings.remasking');
  const mdlm = await overWs('mdlm', [
    { id: 'loop', settings: { sampler: 'remdm', max_tokens: 8, steps: 4, remasking: { schedule: 'loop', eta: 0.2 } } },
    { id: 'bad', settings: { sampler: 'remdm', remasking: { schedule: 'loop', t_on: 0.2, t_off: 0.5 } } },
  ]);
  assert.equal(mdlm.get('loop')!.at(-1)!.type, 'done');
  assert.equal(mdlm.get('bad')!.at(-1)!.type, 'error');
  assert.equal(mdlm.get('bad')!.at(-1)!.param, 'settings.remasking.t_off');
});
