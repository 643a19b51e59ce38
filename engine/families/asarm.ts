// An any-subset autoregressive model decoded with ASSD (engine/samplers/assd.ts), as a Sequence:
// the draft and verify calls are ordinary network rows (role `asarm`, with a per-row `ranks`
// input), so the scheduler batches them with other sequences' calls.
//
// Two modes. Completion: the prompt is rank-0 context and the new positions after it are
// decoded left to right, so each round's accepted tokens extend the output at once; when the
// model's length is full the window slides (the tail becomes context). Infilling: a prompt that
// holds the tokenizer's [MASK] token has holes, one token each; the holes are decoded (left to
// right, every other prompt token is context), and the output is the prompt with its holes
// filled, streamed as far as the holes before it are decoded. Nothing is generated past the
// prompt's end in that mode; completion_tokens counts the holes.
import { promptContext } from '../prompt-start.js';
import type { FinishReason, GenerationParams, Usage } from '../protocol.js';
import { Rng } from '../rng.js';
import { AssdState, type AsarmRow } from '../samplers/assd.js';
import type { Next, Sequence, SequenceSink } from '../sequence.js';
import { FINAL, MASKED } from '../step-view.js';
import { stopTokens } from './stop-tokens.js';

export interface AsarmModel {
  vocabSize: number;
  maxLength: number;
  /** [MASK]: marks holes in a prompt and fills undecoded positions; never sampled. */
  maskId: number | null;
  eosId: number | null;
  speculativeK: number;
}

export class AsarmSequence implements Sequence {
  private readonly rng: Rng;
  private readonly stops: Set<number>;
  private readonly holes: number[];
  private readonly generated: number[] = [];
  private state!: AssdState;
  private row: AsarmRow | null = null;
  private contextLength = 0;
  private windowStart = 0;
  /** Positions of the current state already streamed (completion: window; infill: prompt). */
  private emitted = 0;
  private nfe = 0;
  private stepCount = 0;
  finishReason: FinishReason | null = null;

  constructor(
    readonly id: number,
    private readonly prompt: number[],
    private readonly params: GenerationParams,
    private readonly model: AsarmModel,
    private readonly sink: SequenceSink,
  ) {
    this.rng = new Rng(params.seed);
    this.stops = stopTokens(params, model.eosId);
    this.holes = model.maskId === null ? [] : prompt.flatMap((t, i) => (t === model.maskId ? [i] : []));
    if (this.holes.length > 0) this.state = this.newState(prompt, this.holes);
    else this.openWindow();
  }

  private get k(): number {
    return this.params.speculativeK ?? this.model.speculativeK;
  }

  private newState(tokens: number[], fill: number[]): AssdState {
    const { temperature, topK, topP } = this.params;
    return new AssdState(tokens, fill, {
      k: this.k, V: this.model.vocabSize, shaping: { temperature, topK, topP }, rng: this.rng,
      placeholder: this.model.maskId ?? 0, banned: this.model.maskId,
    });
  }

  private openWindow(): void {
    const L = this.model.maxLength;
    const all = promptContext(this.prompt, this.model.eosId).concat(this.generated);
    // Keep at least half the model's length as context once the text is that long.
    const W = Math.min(this.params.maxTokens - this.generated.length, L - Math.min(all.length, Math.floor(L / 2)));
    const context = all.slice(Math.max(0, all.length - (L - W)));
    this.contextLength = context.length;
    this.windowStart = this.generated.length;
    this.emitted = 0;
    const fill = Array.from({ length: W }, (_, i) => context.length + i);
    this.state = this.newState(context.concat(new Array<number>(W).fill(0)), fill);
  }

  next(): Next {
    if (this.finishReason) return { kind: 'done' };
    const row = this.state.nextRow();
    this.row = row;
    return {
      kind: 'call',
      call: {
        role: 'asarm',
        tokens: row.tokens,
        outputStart: row.outputStart,
        outputLength: row.outputLength,
        inputs: { ranks: { type: 'int64', data: BigInt64Array.from(row.ranks, (r) => BigInt(r)), dims: [row.ranks.length] } },
      },
    };
  }

  consume(logits: Float32Array): void {
    this.nfe++;
    this.state.consume(logits, this.row!);
    this.stepCount++;
    if (this.params.streamSteps) this.sendStep();
    if (this.holes.length > 0) this.flushInfill();
    else this.flushCompletion();
  }

  private sendStep(): void {
    const mask = this.model.maskId ?? 0;
    const t = this.state.tokens;
    const decoded = this.state.decodedCount;
    // An accepted token is never revisited; the drafts not yet accepted show as masked.
    if (this.holes.length > 0) {
      const open = Array.from(t, (_, i) => this.holes.indexOf(i) >= decoded);
      const canvas = Array.from(t, (v, i) => (open[i] ? mask : v));
      this.sink.step({ step: this.stepCount, offset: 0, canvas, marks: open.map((o) => (o ? MASKED : FINAL)).join('') });
    } else {
      const canvas = Array.from(t.subarray(this.contextLength), (v, i) => (i >= decoded ? mask : v));
      this.sink.step({ step: this.stepCount, offset: this.windowStart, canvas, marks: canvas.map((_, i) => (i >= decoded ? MASKED : FINAL)).join('') });
    }
  }

  /** Streams the prompt up to its first undecoded hole. */
  private flushInfill(): void {
    const decoded = this.state.decodedCount;
    const upTo = decoded < this.holes.length ? this.holes[decoded]! : this.prompt.length;
    if (upTo > this.emitted) {
      this.sink.commit(Array.from(this.state.tokens.subarray(this.emitted, upTo)));
      this.emitted = upTo;
    }
    if (this.state.finished) this.finishReason = 'stop';
  }

  /** Streams the decoded prefix of the window; stops on a stop token or maxTokens; slides. */
  private flushCompletion(): void {
    const decoded = this.state.decodedCount;
    const fresh: number[] = [];
    let stopped = false;
    while (this.emitted < decoded) {
      const tok = this.state.tokens[this.contextLength + this.emitted]!;
      this.emitted++;
      if (this.stops.has(tok)) { stopped = true; break; }
      fresh.push(tok);
    }
    if (fresh.length > 0) {
      for (const t of fresh) this.generated.push(t);
      this.sink.commit(fresh);
    }
    if (stopped) { this.finishReason = 'stop'; return; }
    if (this.generated.length >= this.params.maxTokens) { this.finishReason = 'length'; return; }
    if (this.state.finished) this.openWindow();
  }

  advance(): void {
    throw new Error('ASSD sequences have no local steps');
  }

  stop(reason: FinishReason): void {
    if (!this.finishReason) this.finishReason = reason;
  }

  usage(): Usage {
    const completion = this.holes.length > 0 ? Math.min(this.state.decodedCount, this.holes.length) : this.generated.length;
    return { promptTokens: this.prompt.length, completionTokens: completion, nfe: this.nfe, cachedTokens: 0 };
  }
}
