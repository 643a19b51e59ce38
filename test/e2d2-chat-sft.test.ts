// The block family's chat fine-tune end to end: two conversations rendered with a chat template
// of their own (not the server's default) by models/tools/encode_chat.mjs, a small E2D2
// fine-tuned on them by `dlm.sft --family e2d2`, exported by `dlm.e2d2_export --chat-template`,
// then served by the real engine and server to the official openai client on
// /v1/chat/completions. The server must format the chat with the template the model carries
// (prompt_tokens counts it) and the model must answer each prompt as it was trained to (the
// answers start differently, so it reads the prompt as committed context) and stop at its EOS.
// Loss masking, noise and batching: models/tests/test_block_sft.py.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type OpenAI from 'openai';
import { loadModelDir } from '../engine/manifest.js';
import { serveWithClient, type ServedClient } from './helpers/openai.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'dlm-e2d2-chat-'));
const TEMPLATE = { message: '<{{role}}> {{content}}\n', generation_prompt: '<assistant>', separator: '' };
const RED = [{ role: 'user', content: 'What is red?' }, { role: 'assistant', content: 'The colour of blood.' }];
const HELLO = [{ role: 'user', content: 'Say hello.' }, { role: 'assistant', content: 'Hello there.' }];
let sc: ServedClient;
let promptLengths: number[];

function run(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
}

before(async () => {
  const text = join(tmp, 'text');
  mkdirSync(text);
  copyFileSync(join(REPO, 'models/zoo/e2d2-brown/tokenizer.json'), join(text, 'tokenizer.json'));
  writeFileSync(join(tmp, 'template.json'), JSON.stringify(TEMPLATE));
  // The first conversation twice: dlm.sft keeps one example apart for its dev loss.
  writeFileSync(join(tmp, 'chat.jsonl'), [RED, RED, HELLO].map((m) => JSON.stringify({ messages: m })).join('\n') + '\n');
  run('node', ['models/tools/encode_chat.mjs', '--tokenizer', join(text, 'tokenizer.json'), '--template', join(tmp, 'template.json'),
    '--input', join(tmp, 'chat.jsonl'), '--out', join(tmp, 'chat')], REPO);
  const raw = readFileSync(join(tmp, 'chat.idx'));
  const idx = new Int32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length)); // offset, prompt, response
  promptLengths = [idx[1]!, idx[7]!];
  // A freshly initialised E2D2 as the "pre-trained" run, and plain-text windows for the mix.
  run('/usr/bin/python3', ['-c', `
import json, os, numpy as np, torch
from dlm.dit import DiTConfig
from dlm.e2d2 import E2D2
tmp, text = ${JSON.stringify(tmp)}, ${JSON.stringify(text)}
V = len(json.load(open(os.path.join(text, 'tokenizer.json')))['model']['vocab'])
torch.manual_seed(0)
cfg = DiTConfig(vocab_size=V, d_model=128, n_layers=3, n_heads=4, cond_dim=32, max_length=64)
os.makedirs(os.path.join(tmp, 'init'))
torch.save(E2D2(cfg, 1).state_dict(), os.path.join(tmp, 'init', 'ema.pt'))
json.dump({'family': 'e2d2', 'config': cfg.to_dict(), 'dec_layers': 1, 'block_sizes': [4]}, open(os.path.join(tmp, 'init', 'results.json'), 'w'))
for s in ('train', 'val'):
    np.random.default_rng(0).integers(4, V, 4096).astype('<u2').tofile(os.path.join(text, s + '.bin'))
`], join(REPO, 'models'));
  // No EMA and no text batches: the point is a model that has learnt these two answers.
  run('/usr/bin/python3', ['-m', 'dlm.sft', '--family', 'e2d2', '--init', join(tmp, 'init'), '--chat', join(tmp, 'chat'),
    '--text', text, '--out', join(tmp, 'run'), '--minutes', '10', '--max-steps', '600', '--lr', '1e-3', '--ema', '0',
    '--warmup-minutes', '0', '--sft-batch', '2', '--text-every', '1000000', '--text-batch', '2', '--text-seq', '32',
    '--dev', '1', '--val-windows', '2', '--threads', '1', '--eval-minutes', '100', '--ckpt-minutes', '100'], join(REPO, 'models'));
  run('/usr/bin/python3', ['-m', 'dlm.e2d2_export', '--run', join(tmp, 'run'), '--tokenizer', join(text, 'tokenizer.json'),
    '--out', join(tmp, 'model'), '--name', 'e2d2-chat-test', '--chat-template', join(tmp, 'template.json')], join(REPO, 'models'));
  sc = await serveWithClient({ modelDir: join(tmp, 'model') });
});
after(async () => { await sc?.s.close(); });

const ask = (content: string) => ({ model: sc.model, messages: [{ role: 'user' as const, content }], max_tokens: 16, temperature: 0, seed: 1 });

test('the exported E2D2 carries the chat template it was fine-tuned with', () => {
  const m = loadModelDir(join(tmp, 'model')).manifest;
  assert.equal(m.family, 'e2d2');
  assert.deepEqual(m.chat_template, TEMPLATE);
  assert.equal(m.provenance?.['preset'], 'chat-sft');
});

test('chat completions are formatted with that template and answer each prompt as trained', async () => {
  const answers: string[] = [];
  for (const [i, conv] of [RED, HELLO].entries()) {
    const r = await sc.client.chat.completions.create(ask(conv[0]!.content) as OpenAI.ChatCompletionCreateParamsNonStreaming);
    // The server's prompt is the training prompt: the same template, the same ids.
    assert.equal(r.usage!.prompt_tokens, promptLengths[i]);
    const text = r.choices[0]!.message.content ?? '';
    answers.push(text);
    assert.equal(r.choices[0]!.finish_reason, 'stop', `"${text}" did not end at an EOS`);
    // The answer's first word, punctuation aside: how much punctuation this tiny run learns after
    // it varies from run to run (one CI run at 250 steps answered "Hello..").
    const firstWord = (t: string) => /^[A-Za-z']+/.exec(t.trim())?.[0];
    assert.equal(firstWord(text), firstWord(conv[1]!.content), `asked "${conv[0]!.content}", answered "${text}"`);
  }
  assert.notEqual(answers[0], answers[1]);
});

test('a streamed chat answer equals the whole one', async () => {
  const params = ask(RED[0]!.content);
  const whole = await sc.client.chat.completions.create(params as OpenAI.ChatCompletionCreateParamsNonStreaming);
  const stream = await sc.client.chat.completions.create({ ...params, stream: true } as OpenAI.ChatCompletionCreateParamsStreaming);
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, whole.choices[0]!.message.content);
});
