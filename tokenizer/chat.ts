// Chat messages -> one prompt string. The manifest may carry the template the model was
// trained with; models without one get a plain role-tagged default, which is what a tiny
// model trained on raw text handles least badly.
import type { Manifest } from '../engine/manifest.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatTemplate {
  /** One message; {{role}} and {{content}} are substituted. */
  message: string;
  /** Appended after the last message so the model continues as the assistant. */
  generation_prompt: string;
  /** Between messages. */
  separator: string;
}

export const DEFAULT_CHAT_TEMPLATE: ChatTemplate = {
  message: '{{role}}: {{content}}\n',
  generation_prompt: 'assistant:',
  separator: '',
};

export function chatTemplateOf(manifest: Pick<Manifest, 'chat_template'>): ChatTemplate {
  return manifest.chat_template ?? DEFAULT_CHAT_TEMPLATE;
}

export function applyChatTemplate(messages: readonly ChatMessage[], template: ChatTemplate): string {
  // A single pass over the template: a message whose content itself contains "{{role}}"
  // stays as written instead of being substituted again.
  const render = (m: ChatMessage): string =>
    template.message.replace(/\{\{(role|content)\}\}/g, (_, key: string) => (key === 'role' ? m.role : m.content));
  return messages.map(render).join(template.separator) + template.generation_prompt;
}
