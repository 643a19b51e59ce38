// `npm run build`'s last step: the two entry points a start runs, dist/server/main.js and
// dist/engine/main.js, rewritten in place by esbuild from tsc's output into one module each
// (the server's own modules after the engine fork go to chunks beside it, loaded once it has
// forked). A cold start loaded about a hundred compiled modules and the packages' own (zod
// alone is some seventy files) through Node's ES module loader, which resolves, reads and
// compiles each one: over a third of the engine's time to ready (docs/benchmarks.md#cold-start).
// Every other compiled module stays as tsc wrote it, for the tests and the tools; the two
// entries keep their paths, so `npm start`, the edge bundle, the images and the tests all start
// the bundled form. Packages with native addons stay outside (each finds its binary at run
// time from its own folder). Run it only right after tsc: a bundle is never bundled again.
//   node dist/scripts/bundle-entries.js [--root DIR]
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build, type BuildOptions } from 'esbuild';

/** The packages whose native addons must load from their installed folders. */
export const NATIVE_PACKAGES = ['onnxruntime-node', 'uWebSockets.js', 'tokenizers', 'msgpackr'] as const;
/** First line of every bundled file, so that a second run refuses to bundle its own output. */
export const BUNDLE_MARK = '// dlm-serve: bundled by scripts/bundle-entries.ts from the tsc output';
const CHUNK = /^main\.chunk-[A-Z0-9]+\.js(\.map)?$/;

// The CommonJS packages inside (pino, prom-client) call require(); an ES module has none.
const BANNER = `${BUNDLE_MARK}\nimport { createRequire as __dlmCreateRequire } from 'node:module';\nconst require = __dlmCreateRequire(import.meta.url);`;

function common(root: string): BuildOptions {
  return {
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: [...NATIVE_PACKAGES],
    banner: { js: BANNER },
    // Names stay (stack traces read as before); tsc's maps are followed to the TypeScript.
    sourcemap: 'linked',
    allowOverwrite: true,
    logLevel: 'warning',
  };
}

export async function bundleEntries(root: string): Promise<void> {
  for (const entry of ['dist/server/main.js', 'dist/engine/main.js']) {
    const path = join(root, entry);
    if (!existsSync(path)) throw new Error(`${entry} is missing: run tsc first (npm run build)`);
    if (readFileSync(path, 'utf8').startsWith(BUNDLE_MARK)) throw new Error(`${entry} is already bundled: run tsc first (npm run build)`);
  }
  const serverDir = join(root, 'dist/server');
  for (const f of readdirSync(serverDir)) if (CHUNK.test(f)) rmSync(join(serverDir, f));
  await build({
    ...common(root),
    entryPoints: ['dist/server/main.js'],
    outdir: 'dist/server',
    // The entry holds what runs before the engine is forked (the command line); the rest
    // arrives through main.ts's dynamic imports, so it is read and compiled after the fork.
    splitting: true,
    chunkNames: 'main.chunk-[hash]',
    // client.ts forks the engine beside its own file; bundled, that file is dist/server/main.js.
    define: { DLM_ENGINE_ENTRY: JSON.stringify('../engine/main.js') },
  });
  await build({ ...common(root), entryPoints: ['dist/engine/main.js'], outfile: 'dist/engine/main.js' });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { root: { type: 'string' } } });
  await bundleEntries(resolve(values.root ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..')));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`bundle-entries: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
