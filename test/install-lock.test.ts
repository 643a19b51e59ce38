// `npm ci` installs exactly what package-lock.json records and refuses a lock that misses any
// package npm would resolve, including other platforms' optional native addons (npm 11): a
// lock written on one machine must still install on every other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers/spawned-server.js';

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

test('package-lock.json has an entry for every optional dependency, whatever its platform', () => {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { lockfileVersion: number; packages: Record<string, LockEntry> };
  assert.ok(lock.lockfileVersion >= 2, 'npm ci needs the packages section of lockfile v2+');
  const missing: string[] = [];
  let optional = 0;
  for (const [path, entry] of Object.entries(lock.packages)) {
    for (const name of Object.keys(entry.optionalDependencies ?? {})) {
      optional++;
      // Node's lookup: the package's own node_modules, then each folder above it.
      const parts = path === '' ? [] : path.split('/node_modules/');
      const found = parts.some((_, i) => `${parts.slice(0, parts.length - i).join('/node_modules/')}/node_modules/${name}` in lock.packages)
        || `node_modules/${name}` in lock.packages;
      if (!found) missing.push(`${name} (wanted by ${path || 'the root'})`);
    }
  }
  assert.ok(optional > 0, 'the lock lists optional dependencies (msgpackr-extract has six)');
  assert.deepEqual(missing, [], 'regenerate with `npm install --package-lock-only`');
});
