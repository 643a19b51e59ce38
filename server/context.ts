// What every front end (HTTP, WebSocket) is handed: the engine, the model's facts, the
// tokenizer, metrics, logs, limits and admission. Only the shape; the steps a request takes
// live in their own files (prompt-encoding, sequence-plan, request-run, usage, refusals).
import type { Logger } from 'pino';
import type { Engine } from '../engine/api.js';
import type { ModelInfo } from '../engine/protocol.js';
import type { ChatTemplate } from '../tokenizer/chat.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import type { Admission } from './admission.js';
import type { Drain } from './drain.js';
import type { Limits } from './limits.js';
import type { Metrics } from './metrics.js';

export interface ServerContext {
  engine: Engine;
  model: ModelInfo;
  tokenizer: TextTokenizer;
  chatTemplate: ChatTemplate;
  metrics: Metrics;
  log: Logger;
  limits: Limits;
  admission: Admission;
  /** Set once SIGTERM came: admits nothing new (server/drain.ts). */
  drain: Drain;
}
