// What a sequence conditions on before its first generated token. With no prompt, generation
// starts where the training stream starts a document: right after [EOS]. Every family follows
// this rule, so it is written here once.

/** The prompt, or [EOS] alone when the prompt is empty (and the model has an EOS). */
export function promptContext(prompt: readonly number[], eosId: number | null): number[] {
  return prompt.length === 0 && eosId !== null ? [eosId] : [...prompt];
}
