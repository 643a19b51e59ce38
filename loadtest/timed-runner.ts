// A Runner that times another's graph calls: how the benchmarks split a step into the graph
// (session.run) and the work around it.
import type { Runner } from '../engine/scheduler.js';

export interface GraphTime { ms: number; calls: number }

export function timedRunner(inner: Runner): { runner: Runner; time: GraphTime } {
  const time: GraphTime = { ms: 0, calls: 0 };
  const runner: Runner = {
    vocabSize: inner.vocabSize,
    run: async (role, feeds, outputs) => {
      const t = performance.now();
      try { return await inner.run(role, feeds, outputs); } finally { time.ms += performance.now() - t; time.calls++; }
    },
  };
  return { runner, time };
}
