// Encodes chat examples (JSONL from models/data/build_instructions.py) for supervised
// fine-tuning: the prompt is every message but the last rendered with the server's own
// applyChatTemplate (dist/tokenizer/chat.js, so training and serving format chats identically)
// and the template's generation prompt; the response is the last message's content. Prompt and
// response are encoded separately (the generation prompt ends in ':' and the response starts
// with a space, a pre-token boundary, so the ids equal those of the joined text).
// Writes OUT.bin (uint16 ids, little-endian) and OUT.idx (int32 triples: offset, prompt length,
// response length), plus OUT.skipped (count) for examples longer than --max-len.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import tokenizers from 'tokenizers';

const { values } = parseArgs({
  options: {
    tokenizer: { type: 'string' }, template: { type: 'string' }, input: { type: 'string' },
    out: { type: 'string' }, 'max-len': { type: 'string', default: '192' },
  },
});
if (!values.tokenizer || !values.template || !values.input || !values.out) {
  console.error('usage: encode_chat.mjs --tokenizer tokenizer.json --template chat_template.json --input chat.jsonl --out PREFIX');
  process.exit(2);
}
let chat;
try {
  chat = await import(resolve(import.meta.dirname, '../../dist/tokenizer/chat.js'));
} catch (e) {
  console.error(`encode_chat.mjs: dist/tokenizer/chat.js missing (run npx tsc -p tsconfig.json): ${e}`);
  process.exit(1);
}
const template = JSON.parse(readFileSync(values.template, 'utf8'));
const tok = tokenizers.Tokenizer.fromFile(values.tokenizer);
const eos = tok.tokenToId('[EOS]');
const maxLen = Number(values['max-len']);
const ids = [];
const idx = [];
let skipped = 0;
for (const line of readFileSync(values.input, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const ex = JSON.parse(line);
  const msgs = ex.messages;
  const prompt = chat.applyChatTemplate(msgs.slice(0, -1), template);
  const response = ' ' + msgs[msgs.length - 1].content;
  const p = (await tok.encode(prompt, null, { addSpecialTokens: false })).getIds();
  const r = (await tok.encode(response, null, { addSpecialTokens: false })).getIds();
  if (p.length + r.length + 1 > maxLen) { skipped++; continue; }
  idx.push(ids.length, p.length, r.length + 1);
  for (const id of p) ids.push(id);
  for (const id of r) ids.push(id);
  ids.push(eos);
}
writeFileSync(values.out + '.bin', Buffer.from(new Uint16Array(ids).buffer));
writeFileSync(values.out + '.idx', Buffer.from(new Int32Array(idx).buffer));
console.log(JSON.stringify({ out: values.out, examples: idx.length / 3, tokens: ids.length, skipped }));
