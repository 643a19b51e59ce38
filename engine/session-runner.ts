// The scheduler's Runner over a model's ONNX Runtime sessions: feeds each graph exactly the
// inputs it declares (an input the family does not feed is an error naming it), fetches the
// role's first output as `logits` plus the extra outputs the rows asked for, and hands back
// plain batch tensors. EngineCore, the in-process DirectRunner and the benchmarks share it.
import * as ort from 'onnxruntime-node';
import type { Manifest } from './manifest.js';
import type { BatchTensor } from './row-tensor.js';
import type { Runner } from './scheduler.js';

/**
 * `open`: a graph role the sessions lack but the model has (MDLM's denoiser_kv), opened on its
 * first call so that engines which never run it pay nothing at start.
 */
export function sessionRunner(
  m: Manifest, sessions: ReadonlyMap<string, ort.InferenceSession>, open?: (role: string) => Promise<ort.InferenceSession>,
): Runner {
  return {
    vocabSize: m.vocab_size,
    run: async (role, feeds, outputs) => {
      const session = sessions.get(role) ?? (open && m.graphs[role] ? await open(role) : undefined);
      if (!session) throw new Error(`model ${m.name} has no '${role}' graph`);
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const name of session.inputNames) {
        const f = feeds[name];
        if (!f) throw new Error(`graph '${role}' of ${m.name} needs input '${name}', which this family does not feed`);
        ortFeeds[name] = new ort.Tensor(f.type, f.data, f.dims);
      }
      const logitsName = m.graphs[role]!.outputs[0]!;
      // A graph whose first output is also asked for (E2D2's encoder returns only present_*) is fetched once.
      const out = await session.run(ortFeeds, [...new Set([logitsName, ...outputs])]);
      const result: Record<string, BatchTensor> = {};
      for (const [name, alias] of [[logitsName, 'logits'], ...outputs.map((o) => [o, o])] as [string, string][]) {
        const t = out[name];
        if (!t) throw new Error(`graph '${role}' of ${m.name} has no output '${name}'`);
        result[alias] = { type: t.type === 'int64' ? 'int64' : 'float32', data: t.data as Float32Array, dims: [...t.dims] };
      }
      return result;
    },
  };
}
