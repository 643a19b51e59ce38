// The kv_cache modes (engine/families/mdlm-kv.ts) in a module without imports: the manifest's
// schema (defaults.kv_cache) and the engine protocol both name them, and neither imports the other's values.
export const KV_CACHE_MODES = ['off', 'prefix', 'dual'] as const;
export type KvCacheMode = (typeof KV_CACHE_MODES)[number];
