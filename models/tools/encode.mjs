// Encodes corpus documents (JSONL, {"text"}) with a tokenizer.json through the same Hugging Face
// binding the server uses, so training ids and serving ids can never disagree. Each document is
// followed by [EOS]; ids are written as little-endian uint16 (vocabularies here are < 65536).
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import tokenizers from 'tokenizers';

const { values } = parseArgs({
  options: { tokenizer: { type: 'string' }, input: { type: 'string' }, out: { type: 'string' } },
});
if (!values.tokenizer || !values.input || !values.out) {
  console.error('usage: encode.mjs --tokenizer tokenizer.json --input docs.jsonl --out ids.bin');
  process.exit(2);
}
const tok = tokenizers.Tokenizer.fromFile(values.tokenizer);
const eos = tok.tokenToId('[EOS]');
if (eos === null || eos === undefined) throw new Error('tokenizer has no [EOS] token');
const ids = [];
for (const line of readFileSync(values.input, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const enc = await tok.encode(JSON.parse(line).text, null, { addSpecialTokens: false });
  for (const id of enc.getIds()) ids.push(id);
  ids.push(eos);
}
const buf = new Uint16Array(ids);
writeFileSync(values.out, Buffer.from(buf.buffer));
console.log(JSON.stringify({ out: values.out, tokens: ids.length }));
