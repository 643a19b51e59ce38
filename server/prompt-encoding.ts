// A request's prompt as token ids, whichever form it came in: text, caller-supplied ids
// (checked against the vocabulary), or chat messages through the model's chat template.
import { applyChatTemplate } from '../tokenizer/chat.js';
import type { ServerContext } from './context.js';
import { ApiError } from './errors.js';
import { type ChatMessageInput, contentText } from './openai-schemas.js';

export type PromptInput = string | number[];

/** Prompt ids; `param` names the prompt in the request for a 400 about a bad id. */
export async function promptIds(ctx: ServerContext, prompt: PromptInput, param: string): Promise<number[]> {
  if (typeof prompt === 'string') return ctx.tokenizer.encode(prompt);
  const bad = prompt.find((t) => t >= ctx.model.vocabSize);
  if (bad !== undefined) throw ApiError.badRequest(`${param}: token id ${bad} is outside the vocabulary (${ctx.model.vocabSize})`, param, 'invalid_value');
  return prompt;
}

/** The ids of a conversation, rendered with the served model's chat template. */
export function chatPrompt(ctx: ServerContext, messages: readonly ChatMessageInput[]): Promise<number[]> {
  const rendered = messages.map((m) => ({ role: m.role, content: contentText(m.content) }));
  return ctx.tokenizer.encode(applyChatTemplate(rendered, ctx.chatTemplate));
}
