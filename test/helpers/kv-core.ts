// EngineCore in this process for the kv_cache tests (test/kv-cache*.test.ts): each request's
// committed tokens and done message, every step message, and the stats pushed after every tick
// (the pool's bytes among them).
import { EngineCore, modelInfo } from '../../engine/core.js';
import { SettingsError } from '../../engine/errors.js';
import type { Manifest } from '../../engine/manifest.js';
import { validateParams } from '../../engine/validate.js';
import assert from 'node:assert/strict';
import type { DoneMsg, GenerationParams, StatsMsg, StepMsg } from '../../engine/protocol.js';

export interface Outcome { tokens: number[]; done: DoneMsg }

/** EngineCore in this process, with the stats it pushes after every tick. */
export class KvCore {
  private readonly waiting = new Map<number, { tokens: number[]; resolve(d: DoneMsg): void }>();
  private nextId = 1;
  readonly stats: StatsMsg[] = [];
  readonly steps: StepMsg[] = [];
  private constructor(readonly core: EngineCore) {}

  static async open(modelDir: string, opts: { maxBatch?: number; cacheBudgetBytes?: number } = {}): Promise<KvCore> {
    let self: KvCore | null = null;
    const core = await EngineCore.open({ modelDir, device: 'cpu', threads: 1, maxQueue: 64, ...opts }, {
      commit: (id, tokens) => self!.waiting.get(id)?.tokens.push(...tokens),
      step: (m) => self!.steps.push(m),
      error: (e) => { throw new Error(`engine error: ${e.message}`); },
      done: (d) => { const w = self!.waiting.get(d.id); self!.waiting.delete(d.id); w?.resolve(d); },
      stats: (s) => self!.stats.push(s),
    });
    self = new KvCore(core);
    return self;
  }

  run(prompt: number[], params: GenerationParams): { id: number; result: Promise<Outcome> } {
    const id = this.nextId++;
    const tokens: number[] = [];
    const result = new Promise<Outcome>((resolve) => {
      this.waiting.set(id, { tokens, resolve: (done) => resolve({ tokens, done }) });
    });
    this.core.generate(id, prompt, params);
    return { id, result };
  }

  get lastBytes(): number { return this.stats.at(-1)?.cacheBytes ?? -1; }
}


/** A dual row is cancelled while it holds K/V and a prefix row runs beside it: its bytes come back, the other finishes. */
export async function cancelGivesKvBack(c: KvCore, prompt: number[], params: (p: Partial<GenerationParams>) => GenerationParams): Promise<void> {
  const a = c.run(prompt, params({ maxTokens: 120, kvCache: 'dual', steps: 64 }));
  const b = c.run(prompt, params({ maxTokens: 60, kvCache: 'prefix' }));
  while (!c.stats.some((s) => s.cacheBytes > 0)) await new Promise((r) => setTimeout(r, 5));
  c.core.cancel(a.id);
  const [ra, rb] = await Promise.all([a.result, b.result]);
  assert.equal(ra.done.reason, 'cancelled');
  assert.equal(rb.done.reason, 'length');
  assert.equal(rb.tokens.length, 60);
  assert.equal(c.lastBytes, 0);
}

/** The SettingsError validateParams raises for these settings on this manifest (fails if it accepts them). */
export function refusal(m: Manifest, p: GenerationParams, precision = 'fp32'): SettingsError {
  try {
    validateParams(modelInfo(m, 'cpu', precision), p);
  } catch (err) {
    if (err instanceof SettingsError) return err;
    throw err;
  }
  throw new Error(`accepted ${JSON.stringify(p)}`);
}

/**
 * On an engine whose cache budget holds no row's K/V: dual still gives every token, prefix
 * gives off's (every call is a refresh, which is exact), nothing is ever held, fallbacks counted.
 */
export async function runsUncachedOverBudget(modelDir: string, cacheBudgetBytes: number, prompt: number[], params: (p: Partial<GenerationParams>) => GenerationParams): Promise<{ dual: Outcome }> {
  const small = await KvCore.open(modelDir, { cacheBudgetBytes });
  try {
    const off = await small.run(prompt, params({ maxTokens: 70 })).result;
    const dual = await small.run(prompt, params({ maxTokens: 70, kvCache: 'dual' })).result;
    const p = await small.run(prompt, params({ maxTokens: 70, kvCache: 'prefix' })).result;
    assert.equal(dual.tokens.length, 70);
    assert.deepEqual(p.tokens, off.tokens, 'nothing fits: every prefix call is a refresh, which is exact');
    assert.ok(small.stats.every((s) => s.cacheBytes === 0), 'never over its budget');
    assert.ok((small.stats.at(-1)!.kvFallbacksTotal ?? 0) > 0, 'the fallbacks are counted in the pushed stats');
    return { dual };
  } finally {
    await small.core.close();
  }
}
