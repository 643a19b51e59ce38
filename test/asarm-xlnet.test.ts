// A checkpoint in the published AS-ARM's layout (Hugging Face XLNet, random weights, a
// SentencePiece spiece.model) converted by the real CLI (python -m dlm.asarm_xlnet) and decoded
// by the engine with ASSD: the tokenizer reads <mask> as the hole id, completion and infilling,
// calls never more than tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EngineCore } from '../engine/core.js';
import type { DoneMsg, GenerationParams } from '../engine/protocol.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';

const REPO = resolve(import.meta.dirname, '..', '..');
const MASK = 6; // XLNet's <mask>

function py(args: string[]): void {
  const r = spawnSync('/usr/bin/python3', args, { cwd: join(REPO, 'models'), encoding: 'utf8' });
  assert.equal(r.status, 0, `${args.join(' ')} failed: ${r.stderr}`);
}

test('a converted XLNet checkpoint serves ASSD completion and infilling', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dlm-xlnet-'));
  py([join(REPO, 'test', 'fixtures', 'make_asarm_xlnet_checkpoint.py'), dir]);
  const out = join(dir, 'model');
  py(['-m', 'dlm.asarm_xlnet', '--checkpoint', join(dir, 'ckpt'), '--tokenizer', join(dir, 'ckpt', 'spiece.model'), '--out', out, '--max-length', '64']);
  const tok = TextTokenizer.fromFile(join(out, 'tokenizer.json'));
  // Pieces: 9 specials, then \u2581 (9), \u2581Hello (10), \u2581world (11), \u2581w0 (12), ...
  assert.deepEqual(await tok.encode('Hello  world'), [10, 11]);
  assert.deepEqual(await tok.encode('w0<mask> w1'), [12, MASK, 13]);
  assert.equal(await tok.decode([10, 11, 12]), 'Hello world w0');

  const commits = new Map<number, number[]>();
  const waiters = new Map<number, (d: DoneMsg) => void>();
  const core = await EngineCore.open({ modelDir: out, device: 'cpu', threads: 1 }, {
    commit: (id, t) => { commits.set(id, [...(commits.get(id) ?? []), ...t]); },
    step: () => {}, error: (m) => { throw new Error(m.message); }, done: (m) => waiters.get(m.id)?.(m),
  });
  const run = (id: number, prompt: number[], p: Partial<GenerationParams>) => new Promise<DoneMsg>((res) => {
    waiters.set(id, res);
    core.generate(id, prompt, {
      maxTokens: 16, sampler: 'assd', steps: 1, temperature: 1, topP: 1, topK: 0, seed: id,
      ignoreEos: true, stopTokenIds: [], streamSteps: false, ...p,
    });
  });
  try {
    const d = await run(1, [12, 13, 14], { speculativeK: 4 });
    assert.equal(commits.get(1)!.length, 16);
    assert.ok(d.usage.nfe <= 16);
    const prompt = [12, MASK, MASK, 13, MASK, 14];
    const f = await run(2, prompt, { speculativeK: 3 });
    const filled = commits.get(2)!;
    assert.equal(filled.length, prompt.length);
    prompt.forEach((t, i) => (t === MASK ? assert.notEqual(filled[i], MASK) : assert.equal(filled[i], t)));
    assert.equal(f.usage.completionTokens, 3);
    assert.ok(f.usage.nfe <= 3);
  } finally {
    await core.close();
  }
});
