// One request's sequences from admission to the last `done`, whoever answers it (a JSON body,
// an SSE stream, WebSocket frames). The run holds the request's admission places, drives one
// Generation per planned sequence and, once all are done, hands every choice's outcome and the
// request's usage to its listener; the front ends only shape what they are given.
import type { ErrorMsg, FinishReason, StepMsg, Usage } from '../engine/protocol.js';
import type { ServerContext } from './context.js';
import type { Slot } from './admission.js';
import { Generation } from './generation.js';
import { overloaded } from './refusals.js';
import type { RequestPlan } from './sequence-plan.js';
import { usageBody, type UsageBody } from './usage.js';

/** How one sequence ended. */
export interface ChoiceOutcome {
  reason: FinishReason;
  /** vLLM's stop_reason: the stop string that matched, 'low_entropy', or null. */
  stopReason: string | null;
  usage: Usage;
  /** Set when reason is 'error'. */
  error?: ErrorMsg;
}

/** Events of a run; `index` is the sequence's place in the plan (prompt-major). */
export interface RunListener {
  delta(index: number, text: string, tokens: number[]): void;
  step?(index: number, msg: StepMsg): void | Promise<void>;
  choiceDone?(index: number, outcome: ChoiceOutcome): void;
  /** Once, after the last choiceDone. */
  finished(outcomes: readonly ChoiceOutcome[], usage: UsageBody): void;
}

export class RequestRun {
  private readonly gens: Generation[];
  private readonly outcomes: ChoiceOutcome[] = [];
  private remaining: number;
  /** Set when a sequence failed to start: the front end has answered, the listener hears no more. */
  private abandoned = false;

  /**
   * Admits all of the request's sequences or none (throws the 429): an admitted request is
   * never cut short for room.
   */
  static admit(ctx: ServerContext, plan: RequestPlan, listener: RunListener): RequestRun {
    const slots = ctx.admission.tryAdmit(plan.specs.length);
    if (slots === null) throw overloaded(ctx, plan.specs.length);
    return new RequestRun(ctx, plan, listener, slots);
  }

  private constructor(
    private readonly ctx: ServerContext,
    private readonly plan: RequestPlan,
    private readonly listener: RunListener,
    slots: Slot[],
  ) {
    this.remaining = plan.specs.length;
    this.gens = plan.specs.map((spec, index) =>
      new Generation(ctx.engine, ctx.tokenizer, spec, {
        delta: (text, tokens) => {
          if (!this.abandoned) listener.delta(index, text, tokens);
        },
        step: listener.step && ((msg) => (this.abandoned ? undefined : listener.step!(index, msg))),
        done: (reason, usage, error, stopReason) => this.onDone(index, { reason, stopReason, usage, ...(error ? { error } : {}) }),
      }, ctx.metrics, slots[index]));
  }

  /**
   * Hands every sequence to the engine. When one cannot start, all are cancelled and their
   * places freed, and the engine's error is rethrown for the front end to answer.
   */
  start(): void {
    try {
      for (const g of this.gens) g.start();
    } catch (err) {
      this.abandoned = true;
      for (const g of this.gens) {
        g.cancel();
        g.abandon();
      }
      throw err;
    }
  }

  /** Stops every sequence (client cancelled or went away); each still reports `done`. */
  cancel(): void {
    for (const g of this.gens) g.cancel();
  }

  private onDone(index: number, outcome: ChoiceOutcome): void {
    if (outcome.error) this.ctx.log.error({ error: outcome.error }, 'sequence failed');
    this.outcomes[index] = outcome;
    if (!this.abandoned) this.listener.choiceDone?.(index, outcome);
    if (--this.remaining === 0 && !this.abandoned) {
      this.listener.finished(this.outcomes, usageBody(this.plan.prompts, this.outcomes.map((o) => o.usage), this.plan.n));
    }
  }
}
