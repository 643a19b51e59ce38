// A small line chart as SVG text: throughput against concurrency for docs/benchmarks.md. Written by
// hand (a few dozen lines) rather than pulling a plotting library into a server's
// dependencies. The x axis is log2 (concurrency doubles), the y axis linear from 0.

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  width?: number;
  height?: number;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A "nice" step (1, 2 or 5 x 10^k) giving about `n` ticks up to `max`. */
function niceStep(max: number, n: number): number {
  const raw = max / n;
  const k = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * k).find((s) => s >= raw) ?? 10 * k;
}

export function lineChart(spec: ChartSpec): string {
  const W = spec.width ?? 640;
  const H = spec.height ?? 360;
  const m = { left: 64, right: 150, top: 36, bottom: 48 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const all = spec.series.flatMap((s) => s.points.filter(([x, y]) => x > 0 && Number.isFinite(y)));
  const xs = [...new Set(all.map(([x]) => x))].sort((a, b) => a - b);
  const lx = (x: number): number => Math.log2(x);
  const x0 = xs.length ? lx(xs[0]!) : 0;
  const x1 = xs.length > 1 ? lx(xs.at(-1)!) : x0 + 1;
  const yMaxData = Math.max(1e-9, ...all.map(([, y]) => y));
  const step = niceStep(yMaxData, 5);
  const yMax = Math.ceil(yMaxData / step) * step;
  const px = (x: number): number => m.left + ((lx(x) - x0) / (x1 - x0)) * pw;
  const py = (y: number): number => m.top + ph - (y / yMax) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="20" text-anchor="middle" font-size="14">${esc(spec.title)}</text>`);
  for (let y = 0; y <= yMax + step / 2; y += step) {
    const yy = py(y).toFixed(1);
    out.push(`<line x1="${m.left}" y1="${yy}" x2="${m.left + pw}" y2="${yy}" stroke="#ddd"/>`);
    out.push(`<text x="${m.left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${+y.toPrecision(6)}</text>`);
  }
  for (const x of xs) {
    const xx = px(x).toFixed(1);
    out.push(`<line x1="${xx}" y1="${m.top}" x2="${xx}" y2="${m.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${xx}" y="${m.top + ph + 16}" text-anchor="middle">${x}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`);
  spec.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]!;
    const pts = s.points.filter(([x, y]) => x > 0 && Number.isFinite(y)).map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`);
    if (pts.length > 1) out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${c}" stroke-width="2"/>`);
    for (const p of pts) {
      const [cx, cy] = p.split(',');
      out.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${c}"/>`);
    }
    const ly = m.top + 12 + i * 18;
    out.push(`<line x1="${m.left + pw + 12}" y1="${ly}" x2="${m.left + pw + 32}" y2="${ly}" stroke="${c}" stroke-width="2"/>`);
    out.push(`<text x="${m.left + pw + 38}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
