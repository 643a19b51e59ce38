// Incremental detokenization: turns token ids, as they commit, into text deltas that never
// change afterwards.
//
// Decoding one token at a time is wrong in two ways: a byte-level token may hold half of a
// UTF-8 character (it decodes to U+FFFD until the rest arrives), and decoders that clean up
// spaces look at neighbouring tokens. So we decode a short window of recent tokens twice, with
// and without the newest ones, and emit only what the newest ones appended, and only once it
// holds no unfinished character (text before an unfinished one is sent at once). The window
// restarts whenever it ends cleanly, so its cost does not grow with the output.
import type { TextTokenizer } from './tokenizer.js';

const REPLACEMENT = '\uFFFD';

export class IncrementalDetokenizer {
  private readonly ids: number[] = [];
  /** Start of the decode window: tokens before it are emitted and no longer looked at. */
  private prefixOffset = 0;
  /** Tokens before this index have had all their text emitted. */
  private readOffset = 0;
  /**
   * Characters already emitted from tokens at or after readOffset: complete text that came
   * before a trailing incomplete character, sent without waiting for that character.
   */
  private tailSent = 0;

  constructor(private readonly tokenizer: TextTokenizer) {}

  /** Append committed tokens; resolves to the text that is now final (may be ''). */
  async push(tokens: readonly number[]): Promise<string> {
    for (const t of tokens) this.ids.push(t);
    if (this.ids.length === this.readOffset) return '';
    const [before, after] = await this.window();
    const sent = before.length + this.tailSent;
    if (after.endsWith(REPLACEMENT)) {
      // Bytes of an unfinished character: send what precedes them, keep the window open.
      const stable = after.replace(/\uFFFD+$/, '');
      if (stable.length <= sent) return '';
      this.tailSent += stable.length - sent;
      return stable.slice(sent);
    }
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    this.tailSent = 0;
    return after.length > sent ? after.slice(sent) : '';
  }

  /**
   * The sequence ended: whatever is still held back is all there will be (an incomplete
   * character at the very end decodes as U+FFFD, which is the honest answer).
   */
  async flush(): Promise<string> {
    if (this.ids.length === this.readOffset) return '';
    const [before, after] = await this.window();
    const sent = before.length + this.tailSent;
    this.prefixOffset = this.readOffset = this.ids.length;
    this.tailSent = 0;
    return after.length > sent ? after.slice(sent) : '';
  }

  get tokenCount(): number {
    return this.ids.length;
  }

  private window(): Promise<[string, string]> {
    return Promise.all([
      this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset)),
      this.tokenizer.decode(this.ids.slice(this.prefixOffset)),
    ]);
  }
}
