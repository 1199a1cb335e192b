// Writes tests/runtime/test_tokenizer_reference.jsonl: ids from Hugging Face's Rust `tokenizers`
// (its official Node binding, npm `tokenizers` 0.23.2) for hand-picked and seeded-random strings
// (Unicode classes, whitespace runs, special-token strings in text) over every fixture tokenizer.
// Run:  (cd /tmp/x && npm install tokenizers@0.23.2) && NODE_PATH=/tmp/x/node_modules \
//         node scripts/gen_tokenizer_reference.js ../shared > tests/runtime/test_tokenizer_reference.jsonl
const { Tokenizer } = require('tokenizers');
const shared = process.argv[2] || '../shared';
const dirs = { gpt2: 'tokenizers/gpt2', llama2: 'tokenizers/llama2', llama3: 'tokenizers/llama3',
               qwen3: 'tokenizers/qwen3', stories260K: 'models/stories260K', 'glue-lm-8M': 'models/glue-lm-8M' };

const fixed = [
  'Hello world', ' Hello', '  Hello  ', 'Hello   world', '\tHello\n\nworld\r\n', 'a\r\n\r\n  b', '   ', '\n', ' \n ',
  'x  \n  y', 'end with spaces   ', '\u00a0\u00a0nbsp', 'a\u0085b', 'a\ufeffb', 'ideographic\u3000space', 'a\u2028b\u2029c',
  'en\u2003em\u2009thin', "don't DON'T they'll THEY'LL we're WE'RE I'm I'M it's IT'S he'd HE'D we've",
  "x's x'S x'ſ 'ſb ſ'", "''s '' 's", 'O\'Neil\'s', '12345678901', '1,234.56', '٣٤٥ ١٢', '１２３ fullwidth', '½ Ⅻ ²³',
  'e\u0301 cafe\u0301 caf\u00e9', 'A\u030a \u212b \u00c5', '\u1100\u1161\u11a8 한국어', 'ｱｲｳ ｶﾞ', 'ǅ ǆ ﬁ',
  '日本語のテキスト', '中文，标点。', 'ภาษาไทย', 'हिन्दी नमस्ते', 'العربية مرحبا', 'עברית שלום', 'Ελληνικά', 'Кириллица ёЁ',
  '👍🏽 👨‍👩‍👧 🇫🇷 ❤️', '😀😀😀', '\u0000\u0001\u001f\u007f', '▁already▁metaspace ▁', '▁', 'tab\there',
  '<|endoftext|>', 'a<|endoftext|>b', ' <|endoftext|> ', '<|endoftext|><|endoftext|>', '<|endoftext', '<|im_start|>user\nhi<|im_end|>',
  '<think>\nreason\n</think>\n\nanswer', 'x<think>y', '<s>', '<s> Hello</s>', ' <s>a', '<unk>', '</s></s>', '<s',
  '<|begin_of_text|>Hi<|eot_id|>', '<|reserved_special_token_5|>', 'def f(x):\n\treturn x**2  # sq\n',
  'for (int i = 0; i < n; ++i) { a[i] += b[i]; }', '    indented\n        more', '!!!???...', '--- *** ===',
  '$$$ 100% @user #tag', 'https://example.com/path?q=1&r=2', 'snake_case camelCase PascalCase',
  'a'.repeat(300), 'ab '.repeat(100), '1'.repeat(40), ' '.repeat(40) + 'x', 'é'.repeat(150),
];

// Seeded random strings over a pool that mixes every class the pre-tokenizer regexes distinguish.
const pool = [...'aZ09 \t\n\r\'sStTlLdDmM.,;:!?-_()[]{}<>/|\\"#@$%^&*+=~`'].concat(
  ['é', 'ß', 'Ω', 'Ж', 'ſ', 'ǅ', '日', '本', 'ア', '한', 'ก', 'ह', 'ि', 'ا', 'ש', '٣', '½', 'Ⅻ', '²', '١',
   '\u00a0', '\u0085', '\u2003', '\u3000', '\u2028', '\ufeff', '\u200b', '\u0301', '\u0308', '\u0323', '\u1100', '\u1161',
   '\u11a8', '👍', '🏽', '\u200d', '❤', '\ufe0f', '▁', '\u0000', '\u007f', '<s>', '</s>', '<unk>', '<|endoftext|>',
   '<|im_start|>', '<think>', '<|eot_id|>', "'s", "'LL", '  ', '\n\n', '123', 'the', ' the', 'Hello']);
let seed = 12345;
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const randoms = [];
for (let i = 0; i < 150; ++i) {
  const n = 1 + Math.floor(rand() * 24);
  let s = '';
  for (let k = 0; k < n; ++k) s += pool[Math.floor(rand() * pool.length)];
  randoms.push(s);
}

// stories260K's tokenizer.json plus added tokens with every matching flag; the C++ test builds the
// same file (see FlagsTokenizerJson in tests/runtime/test_tokenizer.cpp).
const fs = require('fs');
const flags = JSON.parse(fs.readFileSync(`${shared}/models/stories260K/tokenizer.json`, 'utf8'));
const mk = (id, content, o) => Object.assign({ id, content, single_word: false, lstrip: false, rstrip: false,
                                               normalized: false, special: false }, o);
flags.added_tokens.push(mk(512, '[MASK]', { lstrip: true, special: true }), mk(513, '<sep>', { rstrip: true, special: true }),
                        mk(514, 'cat', { single_word: true }), mk(515, '\u2581dog', { normalized: true }),
                        mk(516, '<both>', { lstrip: true, rstrip: true }));
fs.writeFileSync('/tmp/stories260K_flags_tokenizer.json', JSON.stringify(flags));
const flagTexts = ['a [MASK] b', 'a   [MASK]b', '[MASK]', ' [MASK]', '[MASK][MASK]', 'x<sep>   y', '<sep>', 'x <sep>\n\ny',
  'cat', 'a cat b', 'concat', 'cats', 'cat_x', 'cat!', '(cat)', 'é cat é', 'the dog', 'hotdog', ' dog ', 'dog', 'a  dog',
  'x  <both>  y', '<both>', 'a\t<both>\tb', '[MASK]<sep> cat dog <both>'];

// llama2's tokenizer.json re-expressed with the Metaspace pre-tokenizer/decoder that newer Llama and
// Mistral files use (no normalizer); the C++ test builds the same files (MetaspaceTokenizerJson).
const metaspace = (scheme, split) => {
  const j = JSON.parse(fs.readFileSync(`${shared}/tokenizers/llama2/tokenizer.json`, 'utf8'));
  j.normalizer = null;
  j.pre_tokenizer = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: scheme, split };
  j.decoder = { type: 'Sequence', decoders: [{ type: 'Metaspace', replacement: '\u2581', prepend_scheme: scheme, split },
                                             { type: 'ByteFallback' }, { type: 'Fuse' }] };
  const file = `/tmp/llama2_metaspace_${scheme}_${split}.json`;
  fs.writeFileSync(file, JSON.stringify(j));
  return file;
};

(async () => {
  const all = Object.entries(dirs).map(([name, dir]) => [name, `${shared}/${dir}/tokenizer.json`, fixed.concat(randoms)]);
  all.push(['llama2+metaspace-first', metaspace('first', false), fixed.concat(randoms.slice(0, 60))]);
  all.push(['llama2+metaspace-always-split', metaspace('always', true), fixed.concat(randoms.slice(0, 60))]);
  all.push(['stories260K+flags', '/tmp/stories260K_flags_tokenizer.json', flagTexts.concat(fixed.slice(0, 20))]);
  for (const [name, file, texts] of all) {
    const t = Tokenizer.fromFile(file);
    for (const text of texts) {
      const plain = await t.encode(text, null, { addSpecialTokens: false });
      const ids = plain.getIds();
      const withSpecial = (await t.encode(text, null, { addSpecialTokens: true })).getIds();
      const decoded = await t.decode(ids, false);
      const decodedSkip = await t.decode(ids, true);
      console.log(JSON.stringify({ tokenizer: name, text, ids, ids_special: withSpecial, decoded, decoded_skip: decodedSkip }));
    }
    // Decoding arbitrary id sequences (as generation produces: split UTF-8, stray byte tokens, specials).
    const vocab = t.getVocabSize(true);
    for (let k = 0; k < 40; ++k) {
      const n = 1 + Math.floor(rand() * 12);
      const ids = [];
      for (let i = 0; i < n; ++i) ids.push(rand() < 0.3 ? Math.floor(rand() * Math.min(vocab, 300)) : Math.floor(rand() * vocab));
      const decoded = await t.decode(ids, false), decodedSkip = await t.decode(ids, true);
      console.log(JSON.stringify({ tokenizer: name, kind: 'decode', ids, decoded, decoded_skip: decodedSkip }));
    }
  }
})();
