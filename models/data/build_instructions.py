"""Builds chat instruction data from installed Debian packages, by rule, with no text committed:

- definitions of common words from WordNet (Debian wordnet-base): "What does X mean?";
- "use X in a sentence" from WordNet's example sentences;
- "what does COMMAND do" from man pages' NAME lines (Debian manpages and whatever else is
  installed under /usr/share/man);
- questions and first answers of the Debian FAQ (Debian debian-faq);
- templated small talk, single and multi-turn, mixed with the questions above.

A held-out set of words (about 5%, chosen by a hash of the word so it never moves) is kept apart:
none of their first-sense synsets, glosses or examples appears in training data, under any word.
Man pages and FAQ questions are split the same way by name. Output, one JSON object a line:
  {"kind": ..., "key": ..., "messages": [{"role": "user"|"assistant", "content": ...}, ...],
   "reference": gloss or answer the yardstick scores against}
The last message is the assistant turn that is trained (and scored); earlier ones are context.

  python -m data.build_instructions --out ../.work/chat   (from models/)
"""
import argparse
import glob
import gzip
import hashlib
import json
import os
import random
import re
from collections import defaultdict

WORDNET = '/usr/share/wordnet'
MAN = '/usr/share/man'
FAQ = '/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz'
POS_FILES = {'n': 'noun', 'v': 'verb', 'a': 'adj', 's': 'adj', 'r': 'adv'}


def held_out(key: str) -> bool:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % 20 == 0


# ---------------------------------------------------------------- WordNet
def read_synsets():
    """offset+pos -> (pos, words, definition, examples)."""
    out = {}
    for pos, name in (('n', 'noun'), ('v', 'verb'), ('a', 'adj'), ('r', 'adv')):
        path = os.path.join(WORDNET, f'data.{name}')
        if not os.path.exists(path):
            raise SystemExit(f'{path} missing: install Debian wordnet-base (models/setup.sh)')
        with open(path, encoding='latin-1') as f:
            for line in f:
                if line.startswith('  '):
                    continue  # licence header
                head, _, gloss = line.partition(' | ')
                parts = head.split()
                offset, ss_type, n = parts[0], parts[2], int(parts[3], 16)
                words = [parts[4 + 2 * i].lower() for i in range(n)]
                words = [re.sub(r'\(.*\)$', '', w) for w in words]
                examples = re.findall(r'"([^"]+)"', gloss)
                definition = gloss.split(';')[0].strip().strip('"').strip()
                out[(offset, pos)] = (ss_type, words, definition, examples)
    return out


def first_senses():
    """word -> (synset key, frequency of its first sense in SemCor) for words whose first sense
    was seen at least once (common words), single alphabetic words only."""
    counts = {}
    with open(os.path.join(WORDNET, 'cntlist.rev')) as f:
        for line in f:
            key, sense, cnt = line.split()
            counts[key.split('%')[0] + '#' + key.split('%')[1].split(':')[0] + '#' + sense] = int(cnt)
    best = {}
    for pos, name in (('n', 'noun'), ('v', 'verb'), ('a', 'adj'), ('r', 'adv')):
        with open(os.path.join(WORDNET, f'index.{name}'), encoding='latin-1') as f:
            for line in f:
                if line.startswith('  '):
                    continue
                parts = line.split()
                word = parts[0]
                if not re.fullmatch(r'[a-z]{3,}', word):
                    continue
                p_cnt = int(parts[3])
                offsets = parts[4 + p_cnt + 2:]
                ss_num = {'n': '1', 'v': '2', 'a': '3', 'r': '4'}[pos]
                cnt = counts.get(f'{word}#{ss_num}#1', 0)
                if pos == 'a':
                    cnt = max(cnt, counts.get(f'{word}#5#1', 0))
                if cnt > 0 and (word not in best or cnt > best[word][1]):
                    best[word] = ((offsets[0], pos), cnt)
    return best


def article(word: str) -> str:
    return 'An' if word[0] in 'aeiou' else 'A'


def definition_answer(word: str, ss_type: str, gloss: str) -> str:
    if ss_type == 'n':
        if re.match(r'(a|an|the|any|one|someone|something|a person) ', gloss):
            return f'{article(word)} {word} is {gloss}.'
        return f'{word.capitalize()} is {gloss}.'
    if ss_type == 'v':
        return f'To {word} means to {gloss}.'
    return f'{word.capitalize()} means {gloss}.'


DEFINE_Q = ['What does "{w}" mean?', 'What does {w} mean?', 'What is the meaning of the word {w}?',
            'Define {w}.', 'Can you tell me what {w} means?', 'What is meant by {w}?',
            'Please explain the word {w}.', 'I keep seeing the word "{w}". What does it mean?']
SENTENCE_Q = ['Use {w} in a sentence.', 'Use the word "{w}" in a sentence.',
              'Give me an example sentence with {w}.', 'Can you show me how to use {w} in a sentence?',
              'Write a sentence that uses the word {w}.', 'How would you use "{w}" in a sentence?']


def sentence_of(text: str) -> str:
    text = text.strip()
    text = text[0].upper() + text[1:]
    return text if text[-1] in '.?!' else text + '.'


def held_out_synsets(senses=None) -> set:
    """The first-sense synsets of the held-out words: never in any training text."""
    senses = senses or first_senses()
    return {senses[w][0] for w in senses if held_out(w)}


def wordnet_pairs(rng: random.Random):
    synsets = read_synsets()
    senses = first_senses()
    held_words = {w for w in senses if held_out(w)}
    held_synsets = held_out_synsets(senses)
    # Distinct synsets can share a gloss or an example word for word: those are held out too.
    held_glosses = {synsets[k][2] for k in held_synsets}
    held_examples = {e for k in held_synsets for e in synsets[k][3]}
    train, held = [], []
    for word, (key, _) in sorted(senses.items()):
        ss_type, words, gloss, examples = synsets[key]
        if len(gloss) < 8 or len(gloss) > 200:
            continue
        is_held = word in held_words
        if not is_held and (key in held_synsets or gloss in held_glosses):
            continue  # a held-out word's meaning, asked under a synonym: never trained on
        answer = definition_answer(word, ss_type, gloss)
        sink = held if is_held else train
        for q in (rng.sample(DEFINE_Q, 2) if not is_held else [rng.choice(DEFINE_Q)]):
            sink.append({'kind': 'define', 'key': word, 'reference': gloss,
                         'messages': [{'role': 'user', 'content': q.format(w=word)},
                                      {'role': 'assistant', 'content': answer}]})
        uses = [e for e in examples if re.search(rf'\b{re.escape(word)}', e.lower())
                and (is_held or e not in held_examples)]
        for ex in uses[:2]:
            s = sentence_of(ex)
            sink.append({'kind': 'sentence', 'key': word, 'reference': s,
                         'messages': [{'role': 'user', 'content': rng.choice(SENTENCE_Q).format(w=word)},
                                      {'role': 'assistant', 'content': s}]})
    # Other senses' examples, for more "use X in a sentence" (not the held-out synsets).
    extra = 0
    for key, (ss_type, words, gloss, examples) in synsets.items():
        if key in held_synsets or extra > 30000:
            continue
        for w in words:
            if w in held_words or not re.fullmatch(r'[a-z]{3,}', w):
                continue
            for ex in examples[:1]:
                if ex in held_examples:
                    continue
                if re.search(rf'\b{re.escape(w)}', ex.lower()) and rng.random() < 0.3:
                    s = sentence_of(ex)
                    train.append({'kind': 'sentence', 'key': w, 'reference': s,
                                  'messages': [{'role': 'user', 'content': rng.choice(SENTENCE_Q).format(w=w)},
                                               {'role': 'assistant', 'content': s}]})
                    extra += 1
    return train, held, held_words, held_synsets


# ---------------------------------------------------------------- man pages
COMMAND_Q = {'1': ['What does the {c} command do?', 'What is {c}?', 'What does {c} do?',
                   'What is the {c} command for?', 'Tell me what {c} does.'],
             '8': ['What does the {c} command do?', 'What is {c} used for?', 'What does {c} do?'],
             '2': ['What does the system call {c} do?', 'What is {c}() in C?'],
             '3': ['What does the C function {c} do?', 'What is {c}() for?']}


def _unroff(s: str) -> str:
    s = re.sub(r'\\f[BIRP]|\\f\(..|\\s[-+]?\d', '', s)
    s = s.replace('\\-', '-').replace('\\(em', '-').replace('\\(en', '-').replace('\\ ', ' ')
    s = s.replace("\\'", "'").replace('\\&', '').replace('\\e', '\\')
    return re.sub(r'\s+', ' ', s).strip()


def man_pairs(rng: random.Random, limit=6000):
    train, held = [], []
    seen = set()
    paths = sorted(glob.glob(os.path.join(MAN, 'man[1238]', '*.gz')))
    for path in paths:
        section = os.path.basename(os.path.dirname(path))[3:]
        try:
            with gzip.open(path, 'rt', encoding='utf-8', errors='replace') as f:
                text = f.read(20000)
        except OSError:
            continue
        m = re.search(r'^\.S[Hh] "?NAME"?\s*\n(.*?)(?=^\.S[Hh]|\Z)', text, re.M | re.S)
        if not m:
            continue
        body = ' '.join(l for l in m.group(1).splitlines() if not l.startswith('.'))
        body = _unroff(body)
        nm = re.match(r'([\w.+-]+(?:, [\w.+-]+)*) - (.+)$', body)
        if not nm:
            continue
        cmd = nm.group(1).split(',')[0].strip()
        desc = nm.group(2).strip().rstrip('.')
        if cmd in seen or len(desc) < 6 or len(desc) > 160 or not re.fullmatch(r'[a-z][\w.+-]*', cmd):
            continue
        seen.add(cmd)
        desc = desc[0].lower() + desc[1:] if not desc[:2].isupper() else desc
        if section in ('1', '8'):
            answer = f'{cmd} is a command to {desc}.' if re.match(r'[a-z]+ ', desc) and not desc.startswith(('a ', 'an ', 'the ')) \
                else f'{cmd} is {desc}.'
        else:
            answer = f'{cmd}() is a C function to {desc}.' if section == '3' else f'{cmd}() is a system call to {desc}.'
        q = rng.choice(COMMAND_Q[section]).format(c=cmd)
        (held if held_out('man/' + cmd) else train).append(
            {'kind': 'command', 'key': cmd, 'reference': answer,
             'messages': [{'role': 'user', 'content': q}, {'role': 'assistant', 'content': answer}]})
        if len(seen) >= limit:
            break
    return train, held


# ---------------------------------------------------------------- Debian FAQ
def faq_pairs():
    if not os.path.exists(FAQ):
        raise SystemExit(f'{FAQ} missing: install Debian debian-faq (models/setup.sh)')
    with gzip.open(FAQ, 'rt', encoding='utf-8') as f:
        lines = [l.replace('\u00a0', ' ').rstrip() for l in f]
    train, held = [], []
    i = 0
    while i < len(lines):
        if re.match(r'^\d+(\.\d+)+\. \S', lines[i]):
            q = [lines[i]]
            i += 1
            while i < len(lines) and lines[i].strip():
                q.append(lines[i].strip())
                i += 1
            question = re.sub(r'^\d+(\.\d+)+\.\s*', '', ' '.join(q)).strip()
            while i < len(lines) and not lines[i].strip():
                i += 1
            para = []
            while i < len(lines) and lines[i].strip():
                para.append(lines[i].strip())
                i += 1
            answer = re.sub(r'\s*\(https?://[^)]*\)', '', ' '.join(para))
            answer = re.sub(r'\s+', ' ', answer).strip()
            sentences = re.split(r'(?<=[.!?])\s+', answer)
            answer = ' '.join(sentences[:2])
            if question.endswith('?') and 20 <= len(answer) <= 400:
                (held if held_out('faq/' + question) else train).append(
                    {'kind': 'faq', 'key': question, 'reference': answer,
                     'messages': [{'role': 'user', 'content': question},
                                  {'role': 'assistant', 'content': answer}]})
            continue
        i += 1
    return train, held


# ---------------------------------------------------------------- small talk
NAME = 'dlm-serve\'s default model, a small diffusion language model'
SMALL_TALK = [
    (['Hello!', 'Hi!', 'Hi there.', 'Hello.', 'Hey!', 'Good morning!', 'Good evening.', 'Hello, how are you?'],
     ['Hello! How can I help you today?', 'Hi! What can I do for you?', 'Hello! What would you like to talk about?',
      'Hi there. How can I help?']),
    (['How are you?', 'How are you doing?', 'How is it going?', 'Are you well?'],
     ['I am doing well, thank you. How can I help you?', 'I am fine, thanks for asking. What would you like to know?']),
    (['What is your name?', 'Who are you?', 'What are you?', 'Tell me about yourself.'],
     [f'I am {NAME}. I can answer short questions about words and commands.',
      f'I am {NAME}, served by dlm-serve.']),
    (['Thank you!', 'Thanks.', 'Thanks a lot!', 'Thank you very much.', 'Great, thanks!'],
     ['You are welcome!', 'You are welcome. Is there anything else I can help with?', 'Glad I could help.']),
    (['Goodbye!', 'Bye.', 'See you later.', 'Good night!'],
     ['Goodbye! Have a nice day.', 'Bye! Come back any time.', 'Good night!']),
    (['What can you do?', 'How can you help me?', 'What do you know?'],
     ['I can tell you what common English words mean, use them in a sentence, and say what many '
      'Unix commands do.', 'Ask me what a word means, or what a command does, and I will try to answer.']),
    (['Are you a human?', 'Are you a person?', 'Are you a robot?'],
     ['No, I am a small language model, not a person.', 'I am a language model, not a human.']),
    (['Can you help me?', 'I have a question.', 'May I ask you something?'],
     ['Of course. What would you like to know?', 'Sure, go ahead and ask.']),
    (['Tell me a joke.', 'Say something funny.'],
     ['I am only a small model, so my jokes are small too: why did the word go to school? To learn its meaning.']),
    (['What is the weather like?', 'Is it raining?'],
     ['I cannot see outside, so I do not know the weather where you are.']),
    (['What time is it?', 'What day is it today?'],
     ['I have no clock, so I cannot tell you the time or the date.']),
]


def small_talk(rng: random.Random, questions: list, n_single=4000, n_multi=8000):
    """Single turns, and conversations that open with small talk and then ask one of the
    (training) questions, or ask a question then thank: the trained turn is always the last."""
    out = []
    for _ in range(n_single):
        qs, ans = rng.choice(SMALL_TALK)
        out.append({'kind': 'smalltalk', 'key': 'smalltalk', 'reference': None,
                    'messages': [{'role': 'user', 'content': rng.choice(qs)},
                                 {'role': 'assistant', 'content': rng.choice(ans)}]})
    greet, thanks = SMALL_TALK[0], SMALL_TALK[3]
    for _ in range(n_multi):
        q = rng.choice(questions)
        if rng.random() < 0.6:
            msgs = [{'role': 'user', 'content': rng.choice(greet[0])},
                    {'role': 'assistant', 'content': rng.choice(greet[1])}] + q['messages']
            kind = q['kind']
            ref = q['reference']
        else:
            msgs = q['messages'] + [{'role': 'user', 'content': rng.choice(thanks[0])},
                                    {'role': 'assistant', 'content': rng.choice(thanks[1])}]
            kind, ref = 'smalltalk', None
        out.append({'kind': kind, 'key': q['key'], 'reference': ref, 'messages': msgs, 'turns': 2})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', required=True)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)
    wn_train, wn_held, held_words, held_synsets = wordnet_pairs(rng)
    man_train, man_held = man_pairs(rng)
    faq_train, faq_held = faq_pairs()
    train = wn_train + man_train + faq_train * 4  # the FAQ is small: seen a few times
    train += small_talk(rng, wn_train + man_train + faq_train)
    held = wn_held + man_held + faq_held
    rng.shuffle(train)
    rng.shuffle(held)
    os.makedirs(a.out, exist_ok=True)
    for name, rows in (('train', train), ('heldout', held)):
        with open(os.path.join(a.out, f'{name}.jsonl'), 'w') as f:
            for r in rows:
                f.write(json.dumps(r) + '\n')
    with open(os.path.join(a.out, 'heldout_words.txt'), 'w') as f:
        f.write('\n'.join(sorted(held_words)) + '\n')
    kinds = defaultdict(lambda: [0, 0])
    for r in train:
        kinds[r['kind']][0] += 1
    for r in held:
        kinds[r['kind']][1] += 1
    print(json.dumps({'out': a.out, 'train': len(train), 'heldout': len(held),
                      'heldout_words': len(held_words), 'kinds_train_heldout': dict(kinds)}))


if __name__ == '__main__':
    main()
