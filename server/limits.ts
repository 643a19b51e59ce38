// The server's own bounds on what one client may hold: body and frame sizes, bytes queued for a
// slow reader, sequences per request and per socket, and sequences admitted at once.
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUE } from '../engine/api.js';

export interface Limits {
  /** Largest HTTP request body. */
  maxBodyBytes: number;
  /** Largest WebSocket message we parse; bigger ones get an error frame. */
  maxFrameBytes: number;
  /** Bytes queued for one slow reader (SSE response or WebSocket) before we disconnect it. */
  maxPendingBytes: number;
  /** WebSocket buffered bytes above which we queue (and coalesce) instead of sending. */
  wsSoftBackpressure: number;
  /** Sequences one HTTP request may start (prompts x n). */
  maxSequencesPerRequest: number;
  /** Generations running at once on one WebSocket. */
  maxGenerationsPerSocket: number;
  /**
   * Sequences admitted at once, decoding or queued (the engine's max batch + max queue);
   * beyond it requests get 429 / a WebSocket error frame (server/admission.ts).
   */
  maxLiveSequences: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxBodyBytes: 1 << 20,
  maxFrameBytes: 1 << 20,
  maxPendingBytes: 4 << 20,
  wsSoftBackpressure: 256 << 10,
  maxSequencesPerRequest: 64,
  maxGenerationsPerSocket: 256,
  // The engine's own defaults (engine/api.ts).
  maxLiveSequences: DEFAULT_MAX_BATCH + DEFAULT_MAX_QUEUE,
};
