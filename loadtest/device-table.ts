// Turns the device probe's JSON reports (probe-<device>-<model>.json, as scripts/gpu-check.sh
// writes them) into docs/gpu.md's device benchmark table: one row per model, graph and device, one
// column per batch size, and the ratio of each device to the CPU on the same graph.
//
//   node dist/loadtest/device-table.js --gpu "NVIDIA H100 80GB HBM3" OUT/probe-*.json
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';

interface Batch {
  batch: number;
  length: number;
  medianMs: number;
  positionsPerSec: number;
  tflops?: number;
  peakShare?: number;
  transferShare?: number;
}
interface Report {
  device: string;
  model: string;
  results: Array<{ role: string; ok: boolean; error?: string; batches: Batch[] }>;
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

function main(): void {
  const { values, positionals } = parseArgs({ options: { gpu: { type: 'string', default: 'unknown GPU' } }, allowPositionals: true });
  if (positionals.length === 0) {
    process.stderr.write('usage: device-table.js [--gpu NAME] probe-*.json...\n');
    process.exit(1);
  }
  const reports = positionals.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Report);
  process.stdout.write(deviceTable(reports, values.gpu));
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) main();
