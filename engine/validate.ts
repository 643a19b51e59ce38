// A request's settings against the served model, checked once: the server runs this before it
// admits a request (server/settings.ts), and the engine trusts what reaches it. A pure function
// of the model (ModelInfo, which carries its manifest) and the engine's GenerationParams: the
// checks every family shares here, each family's own in its `validate`. Errors are
// SettingsError, naming the request field.
import { SettingsError } from './errors.js';
import { familyOf } from './families/registry.js';
import { KV_CACHE_MODES, type GenerationParams, type ModelInfo } from './protocol.js';
import { REMDM_SAMPLER } from './samplers/remdm.js';

/** Most denoising steps a request may ask for (ModelInfo.limits.maxSteps). */
export const MAX_STEPS = 1024;

export function validateParams(model: ModelInfo, p: GenerationParams): void {
  const m = model.manifest;
  if (!model.samplers.includes(p.sampler)) {
    throw new SettingsError('sampler', `unknown sampler '${p.sampler}'; this model supports ${model.samplers.join(', ')}`);
  }
  if (!(p.maxTokens >= 1)) throw new SettingsError('max_tokens', `must be at least 1, got ${p.maxTokens}`);
  if (!(p.steps >= 1)) throw new SettingsError('steps', `must be at least 1, got ${p.steps}`);
  if (p.steps > model.limits.maxSteps) throw new SettingsError('steps', `must be at most ${model.limits.maxSteps} for this model, got ${p.steps}`);
  const r = p.remasking;
  if (r) {
    if (r.tOn !== undefined && r.tOff !== undefined && r.tOff >= r.tOn) {
      throw new SettingsError('remasking.t_off', 'must be below t_on (time runs from 1 down to 0)');
    }
    if (p.sampler !== REMDM_SAMPLER) throw new SettingsError('remasking', `applies to sampler '${REMDM_SAMPLER}', not '${p.sampler}'`, 'unsupported_parameter');
  }
  checkAdaptive(p, model);
  const family = familyOf(m);
  if (!family) throw new SettingsError('model', `family '${m.family}' is not served by this engine`, 'unsupported_parameter');
  family.validate(p, m);
  checkKvCache(model, p);
  const min = p.minEntropy;
  if (min !== undefined && min !== 0) {
    if (!(min > 0) || !Number.isFinite(min)) throw new SettingsError('min_entropy', `must be a non-negative number, got ${min}`);
    const window = p.entropyWindow;
    if (window !== undefined && (!Number.isInteger(window) || window < 2)) throw new SettingsError('entropy_window', `must be an integer of at least 2, got ${window}`);
  }
}

/**
 * The adaptive rules' knobs (a finite bound >= 0: 0 commits one token per call) belong to their
 * own sampler; drafts need [MASK] positions to propose for.
 */
function checkAdaptive(p: GenerationParams, model: ModelInfo): void {
  const knobs = [['confidence_factor', p.confidenceFactor], ['entropy_bound', p.entropyBound]] as const;
  for (const [field, v] of knobs) {
    if (v === undefined) continue;
    if (!model.samplers.includes(field)) {
      throw new SettingsError(field, `model ${model.name} has no sampler '${field}' (it supports ${model.samplers.join(', ')})`, 'unsupported_parameter');
    }
    if (!(v >= 0) || !Number.isFinite(v)) throw new SettingsError(field, `must be a finite number >= 0, got ${v}`);
    if (p.sampler !== field) throw new SettingsError(field, `applies to sampler '${field}', not '${p.sampler}'`, 'unsupported_parameter');
  }
  if (p.streamDrafts && model.maskId === null) {
    throw new SettingsError('stream_drafts', `${model.name} has no [MASK] positions to propose drafts for: its step canvases are the drafts`, 'unsupported_parameter');
  }
}

/** kv_cache / cache_refresh / cache_block: only MDLM and Duo with a denoiser_kv graph read them (engine/families/mdlm-kv.ts, duo-kv.ts). */
function checkKvCache(model: ModelInfo, p: GenerationParams): void {
  const m = model.manifest;
  const mode = p.kvCache ?? 'off';
  if (!(KV_CACHE_MODES as readonly string[]).includes(mode)) {
    throw new SettingsError('kv_cache', `must be one of ${KV_CACHE_MODES.join(', ')}, got '${mode}'`);
  }
  if (p.cacheRefresh !== undefined) {
    if (!Number.isInteger(p.cacheRefresh) || p.cacheRefresh < 1) throw new SettingsError('cache_refresh', `must be a positive integer, got ${p.cacheRefresh}`);
    if (mode === 'off') throw new SettingsError('cache_refresh', "applies to kv_cache 'prefix' or 'dual'; kv_cache is 'off'", 'unsupported_parameter');
  }
  if (p.cacheBlock !== undefined) {
    if (!Number.isInteger(p.cacheBlock) || p.cacheBlock < 1 || p.cacheBlock > m.max_length) {
      throw new SettingsError('cache_block', `must be an integer from 1 to the model's max_length ${m.max_length}, got ${p.cacheBlock}`);
    }
    if (mode === 'off') throw new SettingsError('cache_block', "applies to kv_cache 'prefix' or 'dual'; kv_cache is 'off'", 'unsupported_parameter');
  }
  if (mode === 'off') return;
  const refuse = (why: string): never => { throw new SettingsError('kv_cache', `'${mode}' is not available: ${why}`, 'unsupported_parameter'); };
  if (m.family !== 'mdlm' && m.family !== 'duo') refuse(`model ${m.name} is ${m.family}; the whole-sequence K/V caches exist for MDLM and Duo only (block families cache committed blocks exactly on their own)`);
  if (!m.graphs.denoiser_kv) refuse(`model ${m.name} has no denoiser_kv graph (build it: cd models && python3 -m dlm.export_kv --model DIR)`);
  if (m.loopholing) refuse(`model ${m.name} carries a loopholing latent between steps, which the denoiser_kv graph does not take`);
  if (p.sampler === 'remdm') refuse("sampler 'remdm' remasks decoded tokens, so no decoded prefix stays fixed to cache");
  if (model.precision !== 'fp32') refuse(`the engine serves ${model.precision} and the denoiser_kv graph exists in fp32 only`);
}
