// Client -> server messages of the WebSocket API (/v1/ws). Settings are the same fields as in
// the HTTP bodies, nested under `settings`.
// A namespace import, so that a bundler keeps only the parts used (zod's root also exports z).
import * as z from 'zod';
import { ChatMessageSchema } from './openai-schemas.js';
import { SettingsSchema } from './settings.js';

export const GenerateSchema = z
  .strictObject({
    type: z.literal('generate'),
    id: z.string().min(1).max(128),
    prompt: z.union([z.string(), z.array(z.number().int().nonnegative()).min(1)]).optional(),
    messages: z.array(ChatMessageSchema).min(1).optional(),
    settings: SettingsSchema.optional(),
  })
  .refine((m) => (m.prompt === undefined) !== (m.messages === undefined), {
    message: 'give exactly one of prompt or messages',
    path: ['prompt'],
  });

export const CancelSchema = z.strictObject({
  type: z.literal('cancel'),
  id: z.string().min(1).max(128),
});

export type GenerateMessage = z.infer<typeof GenerateSchema>;
