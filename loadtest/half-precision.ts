// Issue 18 item 6: what ONNX Runtime's CPU provider offers at half precision on this machine,
// in one run beside fp32 and int8: the MatMul ceiling's graph computed in float16 and in
// bfloat16 (cast from and back to fp32 around the MatMul, as a model converted to half
// precision would), at the default model's MLP shape batched and a square shape. A type that
// ONNX Runtime has no CPU kernel for is reported with its error, not skipped.
//
//   npm run bench:half -- [--threads N]
import { parseArgs } from 'node:util';
import { measureMatmulCeiling, type HalfType, type MatmulCeiling } from './matmul-ceiling.js';

const { values } = parseArgs({ options: { threads: { type: 'string' } }, strict: true });

async function main(): Promise<void> {
  const shapes: [number, number, number][] = [[72, 384, 1536], [1152, 384, 1536], [1024, 1024, 1024]];
  const base = { seconds: 0.3, bursts: 3, ...(values.threads ? { threads: Number(values.threads) } : {}) };
  const rows: [string, MatmulCeiling | string][] = [];
  rows.push(['fp32', await measureMatmulCeiling(shapes, base)]);
  for (const half of ['float16', 'bfloat16'] as HalfType[]) {
    try {
      rows.push([half, await measureMatmulCeiling(shapes, { ...base, half })]);
    } catch (err) {
      rows.push([half, (err as Error).message.split('\n')[0]!]);
    }
  }
  rows.push(['int8 (DynamicQuantizeMatMul)', await measureMatmulCeiling(shapes, { ...base, int8: true })]);
  const fp32 = rows[0]![1] as MatmulCeiling;
  console.log(`MatMul through onnxruntime-node on the CPU, best burst, G(FL)OP/s (x fp32 at the same shape):`);
  console.log(`  ${'type'.padEnd(30)} ${shapes.map(([m, k, n]) => `${m}x${k}x${n}`.padStart(22)).join('')}`);
  for (const [name, r] of rows) {
    if (typeof r === 'string') { console.log(`  ${name.padEnd(30)} not available: ${r}`); continue; }
    console.log(`  ${name.padEnd(30)} ${r.points.map((p, i) => `${p.gflops.toFixed(1)} (x${(p.gflops / fp32.points[i]!.gflops).toFixed(2)})`.padStart(22)).join('')}`);
  }
}

void main();
