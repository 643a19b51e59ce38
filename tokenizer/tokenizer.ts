// Text <-> token ids for one model, through the Hugging Face tokenizers binding, so that the
// server splits text exactly as the Python side did when it trained and exported the model.
import { Tokenizer } from 'tokenizers';

export class TextTokenizer {
  private constructor(private readonly tok: Tokenizer) {}

  static fromFile(path: string): TextTokenizer {
    return new TextTokenizer(Tokenizer.fromFile(path));
  }

  static fromJson(json: string): TextTokenizer {
    return new TextTokenizer(Tokenizer.fromString(json));
  }

  /**
   * Ids of `text`, without the post-processor's special tokens: prompts are fed to a
   * diffusion model as they are, and the chat template decides every marker itself.
   */
  async encode(text: string): Promise<number[]> {
    const enc = await this.tok.encode(text, null, { addSpecialTokens: false });
    return enc.getIds();
  }

  /** Text of `ids`; special tokens (EOS, [MASK], ...) never reach a client's text. */
  decode(ids: number[]): Promise<string> {
    if (ids.length === 0) return Promise.resolve('');
    return this.tok.decode(ids, true);
  }

  tokenToId(token: string): number | null {
    return this.tok.tokenToId(token);
  }

  get vocabSize(): number {
    return this.tok.getVocabSize(true);
  }
}
