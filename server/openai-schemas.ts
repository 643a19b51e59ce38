// Request bodies of the OpenAI-compatible endpoints, one schema per endpoint. Bodies are
// strict: a misspelt setting ("step" for "steps") is a 400 naming it, not silently ignored.
// OpenAI fields that a diffusion model cannot honour are accepted only at their neutral value,
// so that clients which always send them (penalties of 0, logprobs null) keep working.
// A namespace import, so that a bundler keeps only the parts used (zod's root also exports z).
import * as z from 'zod';
import { SETTINGS_SHAPE } from './settings.js';

const onlyNeutral = <T extends z.ZodType>(schema: T, neutral: (v: z.infer<T>) => boolean, what: string) =>
  schema.nullish().refine((v) => v == null || neutral(v as z.infer<T>), { message: `${what} is not supported by this server` });

const COMMON = {
  /** Optional, as in vLLM: one server serves one model, and a missing name means that one. */
  model: z.string().min(1).nullish(),
  n: z.number().int().min(1).max(16).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.strictObject({ include_usage: z.boolean().nullish() }).nullish(),
  user: z.string().nullish(),
  presence_penalty: onlyNeutral(z.number(), (v) => v === 0, 'a non-zero presence_penalty'),
  frequency_penalty: onlyNeutral(z.number(), (v) => v === 0, 'a non-zero frequency_penalty'),
  logit_bias: onlyNeutral(z.record(z.string(), z.number()), (v) => Object.keys(v).length === 0, 'logit_bias'),
  ...SETTINGS_SHAPE,
} as const;

const tokenIds = z.array(z.number().int().nonnegative()).min(1);

export const CompletionRequestSchema = z.strictObject({
  ...COMMON,
  prompt: z.union([z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)]),
  logprobs: onlyNeutral(z.number().int(), (v) => v === 0, 'logprobs'),
  echo: onlyNeutral(z.boolean(), (v) => v === false, 'echo'),
  best_of: onlyNeutral(z.number().int(), (v) => v === 1, 'best_of > 1'),
  suffix: onlyNeutral(z.string(), (v) => v === '', 'suffix (infilling)'),
});
export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

const TextPart = z.object({ type: z.literal('text'), text: z.string() });

export const ChatMessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(TextPart)]),
  name: z.string().optional(),
});
export type ChatMessageInput = z.infer<typeof ChatMessageSchema>;

export const ChatRequestSchema = z.strictObject({
  ...COMMON,
  messages: z.array(ChatMessageSchema).min(1),
  logprobs: onlyNeutral(z.boolean(), (v) => v === false, 'logprobs'),
  top_logprobs: onlyNeutral(z.number().int(), (v) => v === 0, 'top_logprobs'),
});
export type ChatRequest = z.infer<typeof ChatRequestSchema>;

/** Message content as one string (text parts joined). */
export function contentText(c: ChatMessageInput['content']): string {
  return typeof c === 'string' ? c : c.map((p) => p.text).join('');
}
