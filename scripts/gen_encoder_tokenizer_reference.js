// Writes tests/runtime/tokenizer/test_tokenizer_encoders_reference.jsonl: reference encodings for the BERT
// (WordPiece) and RoBERTa (byte-level BPE) tokenizers of ../shared/tokenizers/{bert,roberta}, and for three
// variants whose slow-file form reads tokenizer_config.json (bert-cased: do_lower_case false; roberta-prefix:
// add_prefix_space true; bert-flags: added tokens with each AddedToken flag, from added_tokens_decoder). Strings: accents and decomposed marks, CJK inside and outside the BMP (every
// handle_chinese_chars block edge, and the unassigned gaps between them), control and format characters,
// whitespace variants, words longer than max_input_chars_per_word, special-token strings in text, sentence
// pairs shaped like GLUE's (MRPC, RTE, QNLI, QQP, MNLI), and seeded random strings.
//
// Reference: Hugging Face's Rust `tokenizers` through its official Node binding (npm `tokenizers` 0.23.2):
// encode(text, pair, {addSpecialTokens}) ids and type ids, decode(ids, skip_special_tokens). The same
// strings are also encoded with transformers.js (npm `@huggingface/transformers`, a separate JavaScript
// implementation); where it gives other ids the line carries them as `transformers_js_ids` (and the summary
// on stderr counts them) — the Rust ids stay the reference, as for the shared samples.
// Run:  (cd /tmp/x && npm install --ignore-scripts tokenizers@0.23.2 @huggingface/transformers@4.3.2) && \
//       NODE_PATH=/tmp/x/node_modules node scripts/gen_encoder_tokenizer_reference.js ../shared \
//         > tests/runtime/tokenizer/test_tokenizer_encoders_reference.jsonl
// (--ignore-scripts: onnxruntime-node's download step is not needed for tokenizers.)
const fs = require('fs');
const { Tokenizer } = require('tokenizers');
const shared = process.argv[2] || '../shared';

const cp = (c) => String.fromCodePoint(c);
const fixed = [
  'Hello, tokenizer! This is a short English sentence.', 'The capital of France is Paris.', '',
  ' ', '   leading and trailing   ', 'tab\tseparated\tvalues', 'new\nline\r\ncrlf\rcr', 'a\u00a0b\u2003c\u3000d\u2028e\u0085f',
  // accents, composed and decomposed; marks that strip_accents removes (Mn) and keeps (Mc, Me)
  'café Café CAFÉ cafe\u0301', 'naïve façade Ångström Å Å', 'ÜMLAUTS über Straße ẞ', 'Crème brûlée à la mode',
  'İstanbul ıi İ', 'ΟΔΥΣΣΕΥΣ Σίσυφος ς', 'ǅ ǈ ǋ ǲ', 'ﬁ ﬂ ﬃ', 'Ⅻ ½ ² ①', 'Ａｂｃ１２３', 'x\u0301\u0302\u0323 q\u20dd',
  'ภาษาไทย สวัสดี', 'हिन्दी नमस्ते', 'العربيةُ مَرحبا', 'עִבְרִית', 'Tiếng Việt có dấu', 'Ελληνικά ἀλήθεια',
  // Japanese and Korean: NFD splits voiced kana and Hangul syllables; CJK ideographs become words
  'がぎぐ パピプ ｶﾞ', '한국어 텍스트 입니다', '日本語のテキスト', '中文，标点。测试！', '我爱北京天安门',
  // handle_chinese_chars block edges, the gap 2B820-2B91F and the blocks past 2CEAF it does not cover
  cp(0x4e00) + cp(0x9fff) + cp(0x3400) + cp(0x4dbf) + cp(0xf900) + cp(0xfaff),
  cp(0x20000) + cp(0x2a6df) + cp(0x2a700) + cp(0x2b73f) + cp(0x2b740) + cp(0x2b81f),
  cp(0x2b820) + cp(0x2b91f) + cp(0x2b920) + cp(0x2ceaf) + cp(0x2ceb0) + cp(0x2f800) + cp(0x2fa1f) + cp(0x30000),
  'a' + cp(0x20000) + 'b' + cp(0x2b820) + 'c', '𠀀𠀁𠀂 text 𪜀 𫝀', '𝐀𝐁𝐂 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙',
  // control and format characters (clean_text drops Cc, Cf, Co of its tables, NUL and U+FFFD)
  'a\u0000b\u0001c\u001fd\u007fe\u0080f\u009fg', 'soft\u00adhyphen zero\u200bwidth join\u200dner', 'bom\ufeffx rep\ufffdx',
  'bidi\u202etext\u202c \u2066iso\u2069', 'new Cf \u08e2 \u110cd after Unicode 8', 'private \ue000\uf8ff ' + cp(0xf0000) + cp(0x10fffd),
  'tag' + cp(0xe0041) + cp(0xe007f) + 'x', 'variation \u2764\ufe0f selector', '👍🏽 👨‍👩‍👧 🇫🇷 😀😀',
  // punctuation: ASCII symbols, Unicode P*, and P* characters assigned after Unicode 8 (not punctuation here)
  '!!!???...', '--- *** === ~~~ ^^^ ``` $$$ +++ <<<>>> |||', '“quotes” ‘single’ «guillemets» „low“',
  '¿Qué? ¡Sí! 。、「」『』【】・', '‐‑‒–—― … ‰ † ‡ • ′ ″', '\u2e43\u2e44\u2e45 \u2e4f\u2e52 \u1b7d\u1b7e',
  '$100 €50 £20 ¥1000 ₹500', 'a+b=c; x<y>z; 5%3', 'snake_case camelCase kebab-case', "don't won't it's I'm we'll they've you're",
  'e.g. i.e. U.S.A. Ph.D.', 'https://example.com/path?q=1&r=two#frag', 'user@example.com @mention #hashtag',
  'def f(x):\n    return x**2  # square\n', 'for (int i = 0; i < n; ++i) { a[i] += b[i]; }', '{"key": [1, 2.5, null]}',
  '1234567890 3.14159 1,000,000 -42 1e-9', '٣٤٥ ١٢ ০১২',
  // long words around max_input_chars_per_word (100 code points, counted after normalization)
  'a'.repeat(99), 'a'.repeat(100), 'a'.repeat(101), 'x ' + 'b'.repeat(150) + ' y', 'é'.repeat(100), 'é'.repeat(101),
  'e\u0301'.repeat(60), '日'.repeat(120), 'antidisestablishmentarianism supercalifragilisticexpialidocious',
  'pneumonoultramicroscopicsilicovolcanoconiosis', 'a-'.repeat(80), 'ab '.repeat(60),
  // special tokens inside the text
  '[CLS] already here [SEP] and [PAD] [UNK]', '[MASK]', 'The capital of France is [MASK].', 'lower [mask] [cls]',
  'x[MASK]y [MASK][MASK]', '<s>[INST] Translate this [/INST]', 'The capital of France is <mask>.', '<mask>',
  '  <mask>', 'a\t\t<mask>b', 'a\n<mask>\n', 'x\u00a0<mask>', 'Fill <mask> and <mask>, then stop.</s>',
  '<pad><unk>', '<s> A </s></s> B </s>', 'first part<|endoftext|>second part', '<mask><mask>  <mask>',
];

// GLUE-shaped sentence pairs (MRPC, RTE, QNLI, QQP, MNLI) and edge cases.
const pairs = [
  ['Amrozi accused his brother, whom he called "the witness", of deliberately distorting his evidence.',
   'Referring to him as only "the witness", Amrozi accused his brother of deliberately distorting his evidence.'],
  ["Yucaipa owned Dominick's before selling the chain to Safeway in 1998 for $2.5 billion.",
   "Yucaipa bought Dominick's in 1995 for $693 million and sold it to Safeway for $1.8 billion in 1998."],
  ['No Weapons of Mass Destruction Found in Iraq Yet.', 'Weapons of Mass Destruction Found in Iraq.'],
  ['A place of sorrow, after Pope John Paul II died, became a place of celebration.', 'Pope Benedict XVI is the new leader.'],
  ['When did the third Digimon series begin?',
   'Unlike the two seasons before it and most of the seasons that followed, Digimon Tamers takes a darker approach.'],
  ['What is the best way to learn C++?', 'How do I learn C++ quickly?'],
  ['Conceptually cream skimming has two basic dimensions - product and geography.',
   'Product and geography are what make cream skimming work. '],
  ['Crème brûlée à Paris', 'Straße über ÜMLAUTS'], ['日本語の文', '中文句子 𠀀𠀁'], ['한국어 문장', 'がぎぐ'],
  ['', 'only the second'], ['only the first', ''], ['', ''], [' ', '\t'],
  ['The capital of France is <mask>.', 'Paris <mask>'], ['The capital of France is [MASK].', '[CLS] [SEP] [MASK]'],
  ['a'.repeat(101), 'b'.repeat(100)], ['control\u0000chars\u200b', 'soft\u00adhyphen'],
  ['<s>first</s>', '</s>second<s>'], ['emoji 👍🏽', 'flags 🇫🇷🇩🇪'],
];

// Seeded random strings over a pool of every class the BERT normalizer and pre-tokenizer tell apart.
const pool = [...'aZ09 \t\n\r\'.,;:!?-_()[]{}<>/|\\"#@$%^&*+=~`'].concat(
  ['é', 'É', 'e\u0301', 'ß', 'İ', 'Σ', 'ﬁ', 'Å', 'ñ', 'Ж', '日', '本', '中', 'ア', 'が', '한', 'ก', 'ั', 'ह', 'ि', 'ا', 'ُ',
   '٣', '½', '²', '\u00a0', '\u0085', '\u2003', '\u3000', '\u2028', '\ufeff', '\u200b', '\u200d', '\u00ad', '\u0000',
   '\u0007', '\u007f', '\ufffd', '\ue000', '\u0301', '\u0308', '\u0323', '\u20dd', '\u2e43', '“', '…', '—', '¿', '。',
   '「', cp(0x20000), cp(0x2a6df), cp(0x2b820), cp(0x2ceb0), cp(0x1d400), '👍', '🏽', '\ufe0f', '[MASK]', '[CLS]',
   '[SEP]', '[PAD]', '[UNK]', '[mask]', '<mask>', ' <mask>', '<s>', '</s>', '<pad>', '<unk>', 'the', ' the', 'Hello',
   'tokenization', 'unbelievable', "'s", "n't", '  ', '\n\n', '123', 'x'.repeat(40)]);
let seed = 16016;
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const randomString = () => {
  const n = 1 + Math.floor(rand() * 24);
  let s = '';
  for (let k = 0; k < n; ++k) s += pool[Math.floor(rand() * pool.length)];
  return s;
};
const randoms = [];
for (let i = 0; i < 160; ++i) randoms.push(randomString());
const randomPairs = [];
for (let i = 0; i < 40; ++i) randomPairs.push([randomString(), randomString()]);

// The variants: the fixture's tokenizer.json as transformers' converter builds it from the slow files
// with these tokenizer_config.json settings (the C++ test writes the same config next to copies of the
// slow files).
const variant = (name, edit) => {
  const j = JSON.parse(fs.readFileSync(`${shared}/tokenizers/${name.split('-')[0]}/tokenizer.json`, 'utf8'));
  edit(j);
  const file = `/tmp/lopa_encoder_ref_${name}.json`;
  fs.writeFileSync(file, JSON.stringify(j));
  return file;
};
const bertCased = variant('bert-cased', (j) => { j.normalizer.lowercase = false; });
const robertaPrefix = variant('roberta-prefix', (j) => {
  j.pre_tokenizer.add_prefix_space = true;
  j.post_processor.add_prefix_space = true;
});
// bert-flags: added tokens with each AddedToken flag, matched in the raw text (normalized: false) or in the
// BertNormalizer's output (normalized: true, so their content is lowercased and stripped of accents too).
// The slow form gets them from tokenizer_config.json's added_tokens_decoder.
const mk = (id, content, o) => Object.assign({ id, content, single_word: false, lstrip: false, rstrip: false,
                                               normalized: false, special: false }, o);
const bertFlagTokens = [mk(30522, '[E1]', { lstrip: true, rstrip: true, special: true }),
                        mk(30523, 'Hello World', { normalized: true }), mk(30524, 'ent', { single_word: true, normalized: true }),
                        mk(30525, '<Sep2>', { rstrip: true }), mk(30526, '\u00dcn\u00ef', { normalized: true })];
const bertFlags = variant('bert-flags', (j) => { j.added_tokens.push(...bertFlagTokens); });
const bertFlagTexts = ['a [E1] b', 'a   [E1]   b', '[E1][E1]', 'x\t[E1]\ny', 'HELLO WORLD and hello world', 'Hello  World',
  'hello world!', 'ent entity rent ent. (ent) ENT', 'x<Sep2>   y', '<Sep2><sep2>', '\u00dcN\u00cf uni Uni \u00fcn\u00ef', '\u65e5ent\u65e5',
  '[E1]Hello World[E1]', 'ent\u00e9 \u00e9ent', '[MASK] [E1] [mask]'];

(async () => {
  let tjsChecked = 0;
  const tjsDiffer = {};
  let transformers = null;
  try {
    transformers = require('@huggingface/transformers');
    transformers.env.allowRemoteModels = false;
    transformers.env.localModelPath = `${shared}/`;
  } catch (e) {
    process.stderr.write(`transformers.js unavailable (${e.message}); Rust ids only\n`);
  }
  const blocks = [
    ['roberta', `${shared}/tokenizers/roberta/tokenizer.json`, 'tokenizers/roberta', fixed.concat(randoms), pairs.concat(randomPairs)],
    ['bert', `${shared}/tokenizers/bert/tokenizer.json`, 'tokenizers/bert', fixed.concat(randoms), pairs.concat(randomPairs)],
    ['bert-cased', bertCased, null, fixed.concat(randoms.slice(0, 60)), pairs],
    ['roberta-prefix', robertaPrefix, null, fixed.concat(randoms.slice(0, 60)), pairs],
    ['bert-flags', bertFlags, null, bertFlagTexts.concat(fixed.slice(0, 40)),
     [['a [E1] b', 'HELLO WORLD'], ['ent', '<Sep2>  x']]],
  ];
  for (const [name, file, tjsDir, texts, pairList] of blocks) {
    const t = Tokenizer.fromFile(file);
    const tjs = transformers && tjsDir ? await transformers.AutoTokenizer.from_pretrained(tjsDir) : null;
    const items = texts.map((text) => [text, null]).concat(pairList);
    for (const [text, pair] of items) {
      const plain = await t.encode(text, pair, { addSpecialTokens: false });
      const special = await t.encode(text, pair, { addSpecialTokens: true });
      const o = { tokenizer: name, text };
      if (pair !== null) o.pair = pair;
      o.ids = plain.getIds();
      o.type_ids = plain.getTypeIds();
      o.ids_special = special.getIds();
      o.type_ids_special = special.getTypeIds();
      o.decoded = await t.decode(o.ids_special, false);
      o.decoded_skip = await t.decode(o.ids_special, true);
      if (tjs) {
        ++tjsChecked;
        const opts = pair !== null ? { text_pair: pair, add_special_tokens: true } : { add_special_tokens: true };
        const ids = tjs.encode(text, opts);
        if (JSON.stringify(ids) !== JSON.stringify(o.ids_special)) {
          o.transformers_js_ids = ids;
          tjsDiffer[name] = (tjsDiffer[name] || 0) + 1;
        }
      }
      console.log(JSON.stringify(o));
    }
  }
  process.stderr.write(`transformers.js: ${tjsChecked} encodings compared, differing from the Rust ids: ` +
                       `${JSON.stringify(tjsDiffer)}\n`);
})();
