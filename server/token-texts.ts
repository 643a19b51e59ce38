// The text of every token id, so that `step` frames can carry the canvas as text a person can
// read (`canvas_text`: one string per position, null where masked) beside the ids. Clients
// then need no tokenizer of their own, which is what lets the browser page show tokens being
// unmasked and revised. Decoding one id at a time per step would cost a tokenizer call per
// position per step; the vocabulary is decoded once instead, the first time a request streams
// steps, and looked up after that.

/** Decodes ids to text; the server's tokenizer (special tokens decode to ''). */
export type Decode = (ids: number[]) => Promise<string>;

// Ids decoded per batch of concurrent calls while building: enough to keep the tokenizer's
// thread pool busy, few enough that a 50k vocabulary never queues 50k promises at once.
const CHUNK = 1024;

export class TokenTexts {
  private table: string[] | null = null;
  private building: Promise<void> | null = null;

  constructor(
    private readonly decode: Decode,
    private readonly vocabSize: number,
    private readonly maskId: number | null,
  ) {}

  /** Resolves once the table is built; the first call starts building it. */
  ready(): Promise<void> {
    this.building ??= this.build();
    return this.building;
  }

  get isReady(): boolean {
    return this.table !== null;
  }

  private async build(): Promise<void> {
    const table = new Array<string>(this.vocabSize);
    for (let start = 0; start < this.vocabSize; start += CHUNK) {
      const ids = Array.from({ length: Math.min(CHUNK, this.vocabSize - start) }, (_, i) => start + i);
      const texts = await Promise.all(ids.map((id) => this.decode([id])));
      texts.forEach((t, i) => (table[start + i] = t));
    }
    this.table = table;
  }

  /**
   * The canvas as text: null at masked positions, '' for tokens without text (EOS and other
   * specials), the token's text otherwise. Call only after ready() resolved.
   */
  canvasText(canvas: readonly number[]): (string | null)[] {
    const table = this.table;
    if (table === null) throw new Error('TokenTexts.canvasText before ready()');
    return canvas.map((id) => (id === this.maskId ? null : table[id] ?? ''));
  }

  /** Drafts as text: null where there is no proposal (a negative id). Call only after ready(). */
  draftText(drafts: readonly number[]): (string | null)[] {
    const table = this.table;
    if (table === null) throw new Error('TokenTexts.draftText before ready()');
    return drafts.map((id) => (id < 0 ? null : table[id] ?? ''));
  }
}

const shared = new WeakMap<object, TokenTexts>();

/**
 * The one table of a tokenizer: every socket and request that streams steps shares it, and
 * it is built once, when the first of them asks.
 */
export function tokenTextsFor(tokenizer: { decode: Decode }, vocabSize: number, maskId: number | null): TokenTexts {
  let texts = shared.get(tokenizer);
  if (texts === undefined) {
    texts = new TokenTexts((ids) => tokenizer.decode(ids), vocabSize, maskId);
    shared.set(tokenizer, texts);
  }
  return texts;
}
