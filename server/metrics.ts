// Prometheus metrics. Our own series are dlm_*; the vllm:* gauges are the names the
// Kubernetes Gateway API Inference Extension's model-server protocol reads (queued and running
// requests, KV-cache utilisation), so that inference gateways such as llm-d can route to us.
// Each server owns its registry: tests run several servers in one process.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Engine } from '../engine/api.js';
import type { ModelInfo, StatsMsg } from '../engine/protocol.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'api' | 'status'>;
  readonly liveSequences: Gauge;
  readonly generatedTokens: Counter;
  readonly requestSeconds: Histogram<'api'>;
  readonly draining: Gauge;
  private readonly nfe: Gauge;
  private readonly stepSeconds: Histogram;
  private readonly batchSize: Histogram;
  private readonly engineQueued: Gauge;
  private readonly engineRunning: Gauge;
  private readonly cacheUsage: Gauge;
  private readonly kvFallbacks: Gauge;
  private readonly vllmWaiting: Gauge<'model_name'>;
  private readonly vllmRunning: Gauge<'model_name'>;
  private readonly vllmKvUsage: Gauge<'model_name'>;
  private readonly vllmGpuCacheUsage: Gauge<'model_name'>;

  private readonly modelName: string;

  constructor(model: Pick<ModelInfo, 'name' | 'device' | 'precision'>) {
    this.modelName = model.name;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'dlm_process_' });
    // An info-style gauge (always 1), as Prometheus exporters report build and config facts.
    new Gauge({
      name: 'dlm_model_info', help: 'The model served, its device and the precision its graphs compute in.',
      labelNames: ['model_name', 'device', 'precision'], registers,
    }).set({ model_name: model.name, device: model.device, precision: model.precision }, 1);
    this.requests = new Counter({
      name: 'dlm_requests_total',
      help: 'Generation requests by API (completions, chat, ws) and outcome status.',
      labelNames: ['api', 'status'],
      registers,
    });
    this.liveSequences = new Gauge({
      name: 'dlm_live_sequences',
      help: 'Sequences the server has started in the engine and not yet seen finish.',
      registers,
    });
    this.draining = new Gauge({ name: 'dlm_draining', help: '1 while the server drains for shutdown (admits nothing new), else 0.', registers });
    this.generatedTokens = new Counter({ name: 'dlm_generated_tokens_total', help: 'Completion tokens committed.', registers });
    this.requestSeconds = new Histogram({
      name: 'dlm_request_seconds',
      help: 'Time from a request being accepted to its last sequence finishing.',
      labelNames: ['api'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.nfe = new Gauge({ name: 'dlm_nfe_total', help: 'Network calls made by the engine since start (counter semantics).', registers });
    this.stepSeconds = new Histogram({
      name: 'dlm_step_seconds',
      help: 'Duration of one batched network call in the engine.',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.batchSize = new Histogram({
      name: 'dlm_batch_size',
      help: 'Sequences in one batched network call.',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    });
    this.engineQueued = new Gauge({ name: 'dlm_engine_queued_sequences', help: 'Sequences waiting for a decode slot.', registers });
    this.engineRunning = new Gauge({ name: 'dlm_engine_running_sequences', help: 'Sequences being decoded.', registers });
    this.cacheUsage = new Gauge({ name: 'dlm_cache_usage_ratio', help: 'KV / encoder cache pool bytes held over its budget (0..1).', registers });
    this.kvFallbacks = new Gauge({ name: 'dlm_kv_cache_fallbacks_total', help: 'kv_cache refreshes whose K/V did not fit the cache budget, so the request ran uncached (counter semantics).', registers });
    const labelNames = ['model_name'] as const;
    this.vllmWaiting = new Gauge({ name: 'vllm:num_requests_waiting', help: 'Requests queued (inference gateway protocol).', labelNames, registers });
    this.vllmRunning = new Gauge({ name: 'vllm:num_requests_running', help: 'Requests running (inference gateway protocol).', labelNames, registers });
    this.vllmKvUsage = new Gauge({ name: 'vllm:kv_cache_usage_perc', help: 'KV-cache utilisation, 1 = full (inference gateway protocol).', labelNames, registers });
    this.vllmGpuCacheUsage = new Gauge({
      name: 'vllm:gpu_cache_usage_perc',
      help: 'KV-cache utilisation, 1 = full (older vLLM name, still read by some gateways).',
      labelNames,
      registers,
    });
    // Every series exists from the start, before the engine's first tick.
    this.observe({ type: 'stats', queued: 0, running: 0, cacheBytes: 0, cacheBudgetBytes: 0, nfeTotal: 0, tokensTotal: 0, stepSeconds: [], batchSizes: [] });
  }

  /** Observes the stats the engine pushes after every tick; returns the unsubscribe. */
  follow(engine: Engine): () => void {
    return engine.onStats((s) => this.observe(s));
  }

  /** One tick's stats: its calls into the histograms, the engine's gauges and counters as they stand. */
  observe(s: StatsMsg): void {
    this.nfe.set(s.nfeTotal);
    for (const t of s.stepSeconds) this.stepSeconds.observe(t);
    for (const b of s.batchSizes) this.batchSize.observe(b);
    const usage = s.cacheBudgetBytes > 0 ? Math.min(1, s.cacheBytes / s.cacheBudgetBytes) : 0;
    this.engineQueued.set(s.queued);
    this.engineRunning.set(s.running);
    this.cacheUsage.set(usage);
    this.kvFallbacks.set(s.kvFallbacksTotal ?? 0);
    const l = { model_name: this.modelName };
    this.vllmWaiting.set(l, s.queued);
    this.vllmRunning.set(l, s.running);
    this.vllmKvUsage.set(l, usage);
    this.vllmGpuCacheUsage.set(l, usage);
  }
}
