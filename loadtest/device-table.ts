// Turns the device probe's JSON reports (probe-<device>-<model>.json, as scripts/gpu-check.sh
// writes them) into docs/gpu.md's device benchmark table: one row per model, graph and device,
// one column per batch size, and the ratio of each device to the CPU on the same graph. Also
// gathers the pieces of scripts/gpu-run.sh into one gpu-run.json, and builds every table of
// that run from it.
//
//   node dist/loadtest/device-table.js --gpu "NVIDIA H100 80GB HBM3" OUT/probe-*.json
//   node dist/loadtest/device-table.js --merge RUN_DIR --json-out gpu-run.json [--failures N]
//   node dist/loadtest/device-table.js --run gpu-run.json          (the markdown tables)
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ServeReport } from './gpu-serve.js';

interface Batch {
  batch: number;
  length: number;
  medianMs: number;
  positionsPerSec: number;
  outputBytes?: number;
  tflops?: number;
  peakShare?: number;
  transferShare?: number;
}
export interface Report {
  device: string;
  model: string;
  results: Array<{ role: string; file?: string; ok: boolean; error?: string; batches: Batch[] }>;
}

export function deviceTable(reports: Report[], gpu: string): string {
  const batchSizes = [...new Set(reports.flatMap((r) => r.results.flatMap((g) => g.batches.map((b) => b.batch))))].sort((a, b) => a - b);
  const cpu = new Map<string, Map<number, Batch>>();
  for (const r of reports.filter((r) => r.device === 'cpu')) {
    for (const g of r.results) cpu.set(`${r.model}\u0000${g.role}`, new Map(g.batches.map((b) => [b.batch, b])));
  }
  const head = ['GPU', 'model', 'graph', 'device', ...batchSizes.map((b) => `batch ${b}`), 'best TFLOP/s (% of peak)', 'copy out (share of call)'];
  const rows = [head, head.map(() => '---')];
  const order = (d: string): number => ['cpu', 'cuda', 'webgpu'].indexOf(d);
  for (const r of [...reports].sort((a, b) => a.model.localeCompare(b.model) || order(a.device) - order(b.device))) {
    for (const g of r.results) {
      const base = cpu.get(`${r.model}\u0000${g.role}`);
      const cells = batchSizes.map((size) => {
        const b = g.batches.find((x) => x.batch === size);
        if (!b) return g.ok ? '-' : 'failed';
        const ref = r.device === 'cpu' ? undefined : base?.get(size);
        const speedup = ref ? ` (${(ref.medianMs / b.medianMs).toFixed(1)}× cpu)` : '';
        return `${Math.round(b.positionsPerSec).toLocaleString('en-US')} pos/s${speedup}`;
      });
      const best = g.batches.reduce<Batch | undefined>((m, b) => (b.tflops !== undefined && (!m || b.tflops > m.tflops!) ? b : m), undefined);
      const flops = best ? `${best.tflops!.toFixed(2)}${best.peakShare === undefined ? '' : ` (${(100 * best.peakShare).toFixed(1)}%)`}` : '-';
      const copies = g.batches.filter((b) => b.transferShare !== undefined);
      const copy = copies.length ? copies.map((b) => `${(100 * b.transferShare!).toFixed(0)}%`).join(' / ') : '-';
      rows.push([r.device === 'cpu' ? '(cpu)' : gpu, basename(r.model), g.role, r.device, ...cells, flops, copy]);
    }
  }
  return rows.map((cells) => `| ${cells.join(' | ')} |`).join('\n') + '\n';
}

/** The bytes one step copies to the host: every output (the logits) vs the in-graph reductions. */
export interface Transfer {
  model: string;
  graph: string;
  device: string;
  batch: number;
  length: number;
  fullBytes: number;
  reducedBytes: number;
  /** fullBytes / reducedBytes. */
  ratio: number;
  fullMs: number;
  reducedMs: number;
}

export interface GpuRun {
  machine: { gpu: string | null; driver: string | null; dryRun: boolean; node: string; onnxruntimeNode: string; cudaProvider: string | null; installCudaCheck: { exit: number; output: string[] }; peaks: string | null; date: string };
  carry: Record<string, unknown>;
  probes: Report[];
  transfer: Transfer[];
  serve: ServeReport[];
  variants: Report[];
  /** The served families, as the serving checks named them. */
  families: string[];
  failures: number;
}

const REDUCED = /^(.+)\.([^.]+)\.reduced\.onnx$/;

/** Pairs each reduced graph's probe (MODEL.GRAPH.reduced.onnx) with its full graph's, per device and batch. */
export function transfers(probes: Report[]): Transfer[] {
  const out: Transfer[] = [];
  for (const r of probes) {
    const m = REDUCED.exec(basename(r.model));
    if (!m) continue;
    const [, model, graph] = m as unknown as [string, string, string];
    const full = probes.find((f) => f.device === r.device && basename(f.model) === model)?.results.find((g) => g.file !== undefined && basename(g.file, '.onnx') === graph);
    for (const b of r.results[0]?.batches ?? []) {
      const fb = full?.batches.find((x) => x.batch === b.batch);
      if (!fb || fb.outputBytes === undefined || b.outputBytes === undefined) continue;
      out.push({ model, graph, device: r.device, batch: b.batch, length: b.length, fullBytes: fb.outputBytes, reducedBytes: b.outputBytes,
        ratio: fb.outputBytes / Math.max(1, b.outputBytes), fullMs: fb.medianMs, reducedMs: b.medianMs });
    }
  }
  return out;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** One gpu-run.json from the pieces scripts/gpu-run.sh leaves in its run folder. */
export function mergeRun(dir: string, failures: number): GpuRun {
  const probesPath = join(dir, 'check', 'probes.json');
  const all = existsSync(probesPath) ? readJson<Report[]>(probesPath) : [];
  const serve = readdirSync(dir).filter((f) => /^serve-.+\.json$/.test(f)).sort().map((f) => readJson<ServeReport>(join(dir, f)));
  const vdir = join(dir, 'variants');
  const variants = existsSync(vdir) ? readdirSync(vdir).filter((f) => f.endsWith('.json')).sort().map((f) => readJson<Report>(join(vdir, f))) : [];
  return {
    machine: readJson(join(dir, 'machine.json')),
    carry: readJson(join(dir, 'carry.json')),
    probes: all.filter((r) => !REDUCED.test(basename(r.model))),
    transfer: transfers(all),
    serve,
    variants,
    families: [...new Set(serve.flatMap((s) => s.models.map((m) => m.family)))].sort(),
    failures,
  };
}

const cell = (rows: string[][]): string => rows.map((cells) => `| ${cells.join(' | ')} |`).join('\n') + '\n';

/** Every table of one GPU run, from its JSON. */
export function runTables(run: GpuRun): string {
  const m = run.machine;
  const gpu = m.gpu ?? 'no GPU';
  const parts: string[] = [];
  parts.push(m.dryRun || !m.gpu
    ? `**Not measured: no GPU was lent.** This is the CPU dry run (${m.date}, node ${m.node}, onnxruntime-node ${m.onnxruntimeNode}); on a GPU machine \`bash scripts/gpu-run.sh --bundle '.devcarry/p*/bundle.part*'\` fills these tables.\n`
    : `${gpu} (driver ${m.driver ?? '?'}), node ${m.node}, onnxruntime-node ${m.onnxruntimeNode}, CUDA provider ${m.cudaProvider ?? 'not installed'}; peaks ${m.peaks ?? 'unknown'}; ${m.date}. ${run.failures} failed step(s).\n`);

  parts.push('Serving checks (real server, official openai client):\n');
  const checks = [['family', 'model', 'device', 'completion', 'stream', 'same seed, same text'], ['---', '---', '---', '---', '---', '---']];
  const word = (c: { ok: boolean; error?: string }): string => (c.ok ? 'ok' : `FAILED${c.error ? `: ${c.error}` : ''}`);
  for (const s of run.serve) {
    for (const x of s.models) checks.push([x.family, basename(x.model), s.device, x.error && !x.checks.completion.ok ? `FAILED: ${x.error}` : word(x.checks.completion), word(x.checks.stream), word(x.checks.seed)]);
  }
  parts.push(cell(checks));

  const batches = [...new Set(run.serve.flatMap((s) => s.models.flatMap((x) => x.sweep.map((p) => p.batch))))].sort((a, b) => a - b);
  const cpu = run.serve.find((s) => s.device === 'cpu');
  const cfg = run.serve[0];
  parts.push(`Batch sweep through the real scheduler (B concurrent completions, ${cfg?.maxTokens ?? '?'} tokens, ${cfg?.steps ?? '?'} steps; tokens/s, TFLOP/s as 2 x parameters x positions, share of the fp32 peak, ratio to the CPU at the same batch):\n`);
  const sweep = [['family', 'device', ...batches.map((b) => `batch ${b}`)], ['---', '---', ...batches.map(() => '---')]];
  for (const s of run.serve) {
    for (const x of s.models) {
      sweep.push([x.family, s.device, ...batches.map((b) => {
        const p = x.sweep.find((q) => q.batch === b);
        if (!p) return '-';
        const ref = s.device === 'cpu' ? undefined : cpu?.models.find((c) => c.model === x.model)?.sweep.find((q) => q.batch === b);
        return `${p.tokensPerSec.toFixed(0)} tok/s, ${p.tflops.toFixed(3)} TFLOP/s${p.peakShare === undefined ? '' : ` (${(100 * p.peakShare).toFixed(2)}%)`}${ref ? `, ${(p.tokensPerSec / ref.tokensPerSec).toFixed(1)}× cpu` : ''}`;
      })]);
    }
  }
  parts.push(cell(sweep));

  parts.push('Graph probes (device-probe: every graph alone, outputs compared with the CPU):\n');
  parts.push(run.probes.length ? deviceTable(run.probes, gpu) : 'none\n');

  parts.push('Host-to-device traffic per step: bytes copied out per call with the full logits vs the in-graph reductions (argmax and its log-probability per position):\n');
  const tr = [['model', 'graph', 'device', 'batch x length', 'full', 'reduced', 'less copied', 'ms full / reduced'], ['---', '---', '---', '---', '---', '---', '---', '---']];
  for (const t of run.transfer) {
    tr.push([t.model, t.graph, t.device, `${t.batch} x ${t.length}`, `${(t.fullBytes / 2 ** 20).toFixed(2)} MiB`, `${(t.reducedBytes / 2 ** 10).toFixed(1)} KiB`, `${t.ratio.toFixed(0)}×`, `${t.fullMs.toFixed(2)} / ${t.reducedMs.toFixed(2)}`]);
  }
  parts.push(run.transfer.length ? cell(tr) : 'none\n');

  parts.push('int8 / fp16 graph variants (graphs.ROLE.variants in model.json):\n');
  parts.push(run.variants.length ? deviceTable(run.variants, gpu) : 'none listed by the manifests\n');
  return parts.join('\n');
}

function main(): void {
  const { values, positionals } = parseArgs({
    options: { gpu: { type: 'string', default: 'unknown GPU' }, merge: { type: 'string' }, run: { type: 'string' }, 'json-out': { type: 'string' }, failures: { type: 'string', default: '0' } },
    allowPositionals: true,
  });
  if (values.merge) {
    const run = mergeRun(values.merge, Number(values.failures));
    const text = JSON.stringify(run, null, 1) + '\n';
    if (values['json-out']) writeFileSync(values['json-out'], text);
    else process.stdout.write(text);
    return;
  }
  if (values.run) {
    process.stdout.write(runTables(readJson<GpuRun>(values.run)));
    return;
  }
  if (positionals.length === 0) {
    process.stderr.write('usage: device-table.js [--gpu NAME] probe-*.json... | --merge RUN_DIR [--json-out F] | --run gpu-run.json\n');
    process.exit(1);
  }
  const reports = positionals.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Report);
  process.stdout.write(deviceTable(reports, values.gpu));
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) main();
