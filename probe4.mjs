import * as ort from 'onnxruntime-node';
const t0 = performance.now();
const s = await ort.InferenceSession.create(process.argv[2], { graphOptimizationLevel: process.argv[3], logSeverityLevel: 0, intraOpNumThreads: 2 });
console.error('CREATE', (performance.now() - t0).toFixed(0));
