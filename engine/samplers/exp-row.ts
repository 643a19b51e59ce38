// exp((x - max) * invT) over a row of logits, two lanes at a time in WebAssembly SIMD, giving the
// very doubles Math.exp gives. The softmax of every sampler is V exps per position (4096 x
// the masked positions per step on the default model), and those exps were most of the work
// around the int8 graph. V8's Math.exp is fdlibm's exp (FreeBSD msun, as ported to V8's
// base/ieee754.cc); this is the same algorithm, the same IEEE operations in the same order per
// lane, so each result is bit for bit the same (test/exp-row.test.ts compares some 700,000
// arguments). Lanes outside the range it handles (x > 0, x < -708: subnormal results, NaN) come
// back NaN, which makes the sum NaN, and the row is redone with Math.exp: no edge case of
// fdlibm's is re-derived here.
//
// The module is a few hundred bytes written below instruction by instruction (no toolchain at
// build time); where WebAssembly SIMD is missing, expRowSum falls back to a Math.exp loop.

// fdlibm's constants (e_exp.c).
const LN2_HI = 6.93147180369123816490e-01;
const LN2_LO = 1.90821492927058770002e-10;
const INV_LN2 = 1.44269504088896338700e+00;
const P = [1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05,
  -1.65339022054652515390e-06, 4.13813679705723846039e-08] as const;

/** The double whose high word is `hi` and low word 0 (fdlibm's thresholds test high words). */
function fromHighWord(hi: number): number {
  const b = new DataView(new ArrayBuffer(8));
  b.setUint32(0, hi);
  return b.getFloat64(0);
}
// |x| > 0.5 ln2 in fdlibm reads hx > 0x3fd62e42, i.e. |x| >= the double with high word 0x3fd62e43.
const REDUCE_FROM = fromHighWord(0x3fd62e43);
// |x| < 2^-28: exp(x) is 1 + x.
const TINY = fromHighWord(0x3e300000);
// Below this, k < -1021 and fdlibm scales through 2^-1000 (subnormal results): left to Math.exp.
const LOWEST = -708;

// --- a minimal WebAssembly encoder: just what the one function needs ---
const SIMD = 0xfd;
const op = {
  block: 0x02, loop: 0x03, if: 0x04, br: 0x0c, brIf: 0x0d, end: 0x0b, localGet: 0x20, localSet: 0x21,
  localTee: 0x22, f64Load: 0x2b, f64Store: 0x39, i32Const: 0x41, f64Const: 0x44, i32LtU: 0x49, i32GeU: 0x4f,
  i32Add: 0x6a, i32Shl: 0x74, f64Add: 0xa0, void: 0x40,
} as const;
// SIMD opcodes (after the 0xfd prefix, LEB128).
const v = {
  load64Zero: 0x5d, store: 0x0b, const: 0x0c, f64x2Splat: 0x14, and: 0x4e, or: 0x50, bitselect: 0x52,
  f64x2Lt: 0x49, f64x2Gt: 0x4a, f64x2Ge: 0x4c, f64x2Ne: 0x48, f64x2Abs: 0xec, f64x2Add: 0xf0, f64x2Sub: 0xf1,
  f64x2Mul: 0xf2, f64x2Div: 0xf3, f64x2Trunc: 0x7a, promoteLow: 0x5f, i64x2Shl: 0xcb,
} as const;

function leb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>>= 7;
    if (n === 0) { out.push(b); return out; }
    out.push(b | 0x80);
  }
}
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) { out.push(b); return out; }
    out.push(b | 0x80);
  }
}
const simd = (code: number, ...imm: number[]): number[] => [SIMD, ...leb(code), ...imm];
function f64x2Const(x: number): number[] {
  const b = new DataView(new ArrayBuffer(16));
  b.setFloat64(0, x, true);
  b.setFloat64(8, x, true);
  return simd(v.const, ...new Uint8Array(b.buffer));
}
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()];

/**
 * expRow(n, V, inOff, outOff, max, invT, banned) -> sum: out[i] = exp((in[i] - max) * invT) for
 * i < n (n = V rounded up to even), in as f32 at inOff, out as f64 at outOff; out[banned] = 0
 * (banned < 0: none); then the sum of out[0..V) in index order. A lane it does not handle is
 * NaN, and so is the sum then.
 */
function moduleBytes(): Uint8Array {
  const I32 = 0x7f, F64 = 0x7c, V128 = 0x7b;
  // params 0-6; locals: 7 i, 8 sum, then v128 temporaries and hoisted constants.
  const [N, LEN, IN, OUT, MAX, INVT, BANNED, I, SUM] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  let next = 9;
  const vl = (): number => next++;
  const [X, AX, T, HI, LO, R, RR, C, Y, BAD, REDUCE] = Array.from({ length: 11 }, vl);
  const consts = new Map<number, number>(); // value -> local holding it splatted
  const get = (l: number): number[] => [op.localGet, l];
  const set = (l: number): number[] => [op.localSet, l];
  const k = (x: number): number[] => {
    let l = consts.get(x);
    if (l === undefined) { l = vl(); consts.set(x, l); }
    return get(l);
  };
  const addr = (base: number, scale: number): number[] => [...get(base), ...get(I), op.i32Const, ...sleb(Math.log2(scale)), op.i32Shl, op.i32Add];
  const vMAX = vl(), vINVT = vl();
  const body: number[] = [
    op.block, op.void, op.loop, op.void,
    ...get(I), ...get(N), op.i32GeU, op.brIf, 1,
    ...addr(IN, 4), ...simd(v.load64Zero, 3, 0), ...simd(v.promoteLow),
    ...get(vMAX), ...simd(v.f64x2Sub), ...get(vINVT), ...simd(v.f64x2Mul), op.localTee, X,
    ...simd(v.f64x2Abs), op.localTee, AX, ...k(REDUCE_FROM), ...simd(v.f64x2Ge), ...set(REDUCE),
    // k = (int)(invln2 * x + (x < 0 ? -0.5 : 0.5)), and 0 where |x| does not need reducing.
    ...k(-0.5), ...k(0.5), ...get(X), ...k(0), ...simd(v.f64x2Lt), ...simd(v.bitselect),
    ...k(INV_LN2), ...get(X), ...simd(v.f64x2Mul), ...simd(v.f64x2Add),
    ...simd(v.f64x2Trunc), ...get(REDUCE), ...simd(v.and), op.localTee, T,
    // hi = x - t*ln2hi, lo = t*ln2lo, r = hi - lo (with t = 0: hi = x, lo = 0, r = x).
    ...get(X), ...get(T), ...k(LN2_HI), ...simd(v.f64x2Mul), ...simd(v.f64x2Sub), ...set(HI),
    ...get(T), ...k(LN2_LO), ...simd(v.f64x2Mul), ...set(LO),
    ...get(HI), ...get(LO), ...simd(v.f64x2Sub), op.localTee, R,
    ...get(R), ...simd(v.f64x2Mul), ...set(RR),
    // c = r - rr*(P1 + rr*(P2 + rr*(P3 + rr*(P4 + rr*P5))))
    ...get(R), ...get(RR),
    ...k(P[0]), ...get(RR), ...k(P[1]), ...get(RR), ...k(P[2]), ...get(RR),
    ...k(P[3]), ...get(RR), ...k(P[4]), ...simd(v.f64x2Mul), ...simd(v.f64x2Add),
    ...simd(v.f64x2Mul), ...simd(v.f64x2Add), ...simd(v.f64x2Mul), ...simd(v.f64x2Add), ...simd(v.f64x2Mul), ...simd(v.f64x2Add),
    ...simd(v.f64x2Mul), ...simd(v.f64x2Sub), ...set(C),
    // y = 1 - ((lo - (r*c)/(2 - c)) - hi); fdlibm's k == 0 form is the same doubles with hi = x, lo = 0.
    ...k(1), ...get(LO), ...get(R), ...get(C), ...simd(v.f64x2Mul), ...k(2), ...get(C), ...simd(v.f64x2Sub),
    ...simd(v.f64x2Div), ...simd(v.f64x2Sub), ...get(HI), ...simd(v.f64x2Sub), ...simd(v.f64x2Sub),
    // * 2^k (exact: results stay normal above LOWEST): t + 1023 + 2^52 holds k + 1023 in its
    // low mantissa bits, and shifting them into the exponent field makes 2^k.
    ...get(T), ...k(1023 + 2 ** 52), ...simd(v.f64x2Add), op.i32Const, ...sleb(52), ...simd(v.i64x2Shl),
    ...simd(v.f64x2Mul), ...set(Y),
    // |x| < 2^-28: 1 + x.
    ...k(1), ...get(X), ...simd(v.f64x2Add), ...get(Y), ...get(AX), ...k(TINY), ...simd(v.f64x2Lt), ...simd(v.bitselect), ...set(Y),
    // NaN where x > 0, x < LOWEST or x is NaN (x != x).
    ...get(X), ...k(0), ...simd(v.f64x2Gt), ...get(X), ...k(LOWEST), ...simd(v.f64x2Lt), ...simd(v.or),
    ...get(X), ...get(X), ...simd(v.f64x2Ne), ...simd(v.or), ...set(BAD),
    ...addr(OUT, 8), ...k(NaN), ...get(Y), ...get(BAD), ...simd(v.bitselect), ...simd(v.store, 3, 0),
    ...get(I), op.i32Const, 2, op.i32Add, ...set(I),
    op.br, 0,
    op.end, op.end,
    // out[banned] = 0, then sum out[0..V) in order.
    ...get(BANNED), ...get(LEN), op.i32LtU, op.if, op.void,
    ...get(OUT), ...get(BANNED), op.i32Const, 3, op.i32Shl, op.i32Add, op.f64Const, 0, 0, 0, 0, 0, 0, 0, 0, op.f64Store, 3, 0,
    op.end,
    op.i32Const, 0, ...set(I),
    op.block, op.void, op.loop, op.void,
    ...get(I), ...get(LEN), op.i32GeU, op.brIf, 1,
    ...get(SUM), ...addr(OUT, 8), op.f64Load, 3, 0, op.f64Add, ...set(SUM),
    ...get(I), op.i32Const, 1, op.i32Add, ...set(I),
    op.br, 0,
    op.end, op.end,
    ...get(SUM),
    op.end,
  ];
  // Constants are splatted into their locals once, before the loop.
  const prologue: number[] = [
    ...get(MAX), ...simd(v.f64x2Splat), ...set(vMAX),
    ...get(INVT), ...simd(v.f64x2Splat), ...set(vINVT),
    ...[...consts].flatMap(([x, l]) => [...f64x2Const(x), ...set(l)]),
  ];
  const locals = [[1, I32], [1, F64], [next - 9, V128]];
  const func = [...vec(locals.map(([n, t]) => [...leb(n!), t!])), ...prologue, ...body];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32], [I32], [F64], [F64], [I32]]), ...vec([[F64]])]])),
    ...section(3, vec([[0]])), // function 0 has type 0
    ...section(5, vec([[0x00, 1]])), // memory: 1 page at least
    ...section(7, vec([[...name('mem'), 0x02, 0], [...name('expRow'), 0x00, 0]])),
    ...section(10, vec([[...leb(func.length), ...func]])),
  ]);
}

const name = (s: string): number[] => [...leb(s.length), ...Array.from(s, (ch) => ch.charCodeAt(0))];

// The few WebAssembly globals used (neither lib ES2023 nor @types/node 20 declares them).
interface Wasm {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object) => { exports: Record<string, unknown> };
}
interface WasmMemory { readonly buffer: ArrayBuffer; grow(pages: number): number }
interface Kernel { memory: WasmMemory; expRow: (n: number, V: number, inOff: number, outOff: number, max: number, invT: number, banned: number) => number }

function instantiate(): Kernel | null {
  const wasm = (globalThis as { WebAssembly?: Wasm }).WebAssembly;
  try {
    const bytes = moduleBytes();
    if (!wasm || !wasm.validate(bytes)) return null;
    const inst = new wasm.Instance(new wasm.Module(bytes));
    return { memory: inst.exports.mem as WasmMemory, expRow: inst.exports.expRow as Kernel['expRow'] };
  } catch {
    return null;
  }
}

const kernel = instantiate();
let f32 = new Float32Array(0);
let f64 = new Float64Array(0);

/** Whether rows run through the SIMD kernel (false: the Math.exp loop). */
export const expRowSimd = kernel !== null;

/** The weights the last expRowSum computed (index v < V): a view the next call overwrites. */
export function rowWeights(): Float64Array {
  return f64;
}

/**
 * The softmax's numerators of one row, and their sum: rowWeights()[v] = Math.exp((logits[off +
 * v] - max) * invT), 0 at `banned`, bit for bit, summed in index order (the order the samplers
 * always summed in, so the sum is the same double too).
 */
export function expRowSum(logits: Float32Array, off: number, V: number, max: number, invT: number, banned: number | null): number {
  if (!kernel) {
    if (f64.length < V) f64 = new Float64Array(V);
    return jsRow(logits, off, V, max, invT, banned, f64);
  }
  const n = (V + 1) & ~1;
  if (f32.buffer !== kernel.memory.buffer || f32.length < n) {
    // f32 inputs first, then f64 outputs on a 16-byte boundary, for rows up to n long.
    const outOff = (4 * n + 15) & ~15;
    const bytes = outOff + 8 * n;
    const have = kernel.memory.buffer.byteLength;
    if (bytes > have) kernel.memory.grow(Math.ceil((bytes - have) / 65536));
    f32 = new Float32Array(kernel.memory.buffer, 0, n);
    f64 = new Float64Array(kernel.memory.buffer, outOff, n);
  }
  f32.set(logits.subarray(off, off + V));
  let sum = kernel.expRow(n, V, 0, f64.byteOffset, max, invT, banned ?? -1);
  // A lane the kernel leaves to Math.exp (or a NaN logit): the row again, in plain JS.
  if (sum !== sum) sum = jsRow(logits, off, V, max, invT, banned, f64);
  return sum;
}

function jsRow(logits: Float32Array, off: number, V: number, max: number, invT: number, banned: number | null, out: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < V; i++) {
    const e = i === banned ? 0 : Math.exp((logits[off + i]! - max) * invT);
    out[i] = e;
    sum += e;
  }
  return sum;
}
