// Writes tests/runtime/tokenizer/test_tokenizer_reference.jsonl: ids from Hugging Face's Rust `tokenizers`
// (its official Node binding, npm `tokenizers` 0.23.2) for hand-picked and seeded-random strings
// (Unicode classes, whitespace runs, special-token strings in text) over every fixture tokenizer, and
// for the codegen (Phi-1/1.5/2) tokenizer a code corpus of indentation and whitespace runs, which its
// 38 added whitespace tokens split before the ByteLevel pre-tokenizer.
// Run:  (cd /tmp/x && npm install tokenizers@0.23.2) && NODE_PATH=/tmp/x/node_modules \
//         node scripts/gen_tokenizer_reference.js ../shared > tests/runtime/tokenizer/test_tokenizer_reference.jsonl
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
// same file (write_flags_tokenizer in tests/runtime/tokenizer/test_tokenizer.cpp).
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

// codegen: indented code and runs of spaces, tabs and CRLF, where the 38 added tokens (31..2 spaces =
// 50257..50286, 9..2 tabs = 50287..50294, matched leftmost-longest before pre-tokenization) take what
// GPT-2's `\s+(?!\S)` would otherwise split.
const lcg = (s) => () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
const codeRand = lcg(20240229);
const sp = (n) => ' '.repeat(n), tb = (n) => '\t'.repeat(n);
const codeCorpus = [];
for (let n = 1; n <= 40; ++n) codeCorpus.push(sp(n) + 'x', 'x' + sp(n) + '\ny', 'x' + sp(n), sp(n));
for (let n = 1; n <= 20; ++n) codeCorpus.push(tb(n) + 'x', 'x' + tb(n) + '\n', tb(n));
const py = (ind) => [
  'class Stack:', `${sp(ind)}def push(self, x):`, `${sp(2 * ind)}if x is None:`, `${sp(3 * ind)}raise ValueError("x")`,
  `${sp(2 * ind)}for i in range(3):`, `${sp(3 * ind)}while i:`, `${sp(4 * ind)}i -= 1  # count down`, '',
  `${sp(2 * ind)}self.items.append(x)`, `${sp(ind)}`, `${sp(ind)}def pop(self):`, `${sp(2 * ind)}return self.items.pop()`, ''].join('\n');
for (const ind of [1, 2, 3, 4, 8, 12, 16]) codeCorpus.push(py(ind));
codeCorpus.push(
  py(4).replace(/\n/g, '\r\n'), py(4).replace(/    /g, '\t'), py(2).replace(/  /g, '\t'),
  'def f(a,\n      b,\n      c):\n    return (a +\n            b)\n',
  'if x:\n\tif y:\n\t\tif z:\n\t\t\tif w:\n\t\t\t\tdeep()\n\t\t\t\t\t\t\t\t\t\t\t\tdeeper()\n',
  'x = 1    \ny = 2\t\t\nz = 3 \t \n', 'a\n    \n    \nb', 'a\n\t\n\t\t\n\t \t\nb', '\n\n\n    \n\n', '    \n',
  ' \t', '\t ', '  \t\t  ', ' \t \t \t', '\t  \t  \t', '    \t    \t', '\t\t    \t\t    x', ' \t\t\t\t\t\t\t\t\t\t\t x',
  'a  b   c    d     e', 'a\t\tb\t\t\tc', 'x' + sp(31), 'x' + sp(32) + 'y', 'x' + sp(62) + 'y', sp(100) + 'end', tb(30) + 'end',
  'int main() {\r\n    return 0;\r\n}\r\n', 'line  \r\n  next\r\n\r\n    \r\n', '\r\n\r\n  \r\n\t\r\n',
  '/*\n *  comment\n *\tmore\n */\nint  x;\t// trailing  \n', '#include <stdio.h>\n\nint main(void)\n{\n\tprintf("hi\\n");\n}\n',
  'SELECT  a,\n        b\n  FROM   t\n WHERE  x  =  1;', '| col  | col2   |\n|------|--------|\n| 1    | 2      |',
  '    <|endoftext|>    ', '<|endoftext|>  \n  <|endoftext|>', '\t<|endoftext|>\t\t', 'x  <|endoftext|>',
  '    é', '  日本  語  ', '   \u00a0  ', '  \u3000  x', '  \u0085  ', ' ' + '\u00a0'.repeat(3) + ' ', '    👍    ',
  "    return f'{x}'  ", '  # comment with trailing spaces   ', '    \n    \n    x', 'x\n' + sp(16) + '\n' + sp(16) + 'y',
);
// Seeded random strings over a whitespace-heavy pool.
const codePool = [' ', ' ', ' ', '  ', '    ', '\t', '\t\t', '\n', '\r\n', '\r', 'x', 'if', 'def', '(', ')', ':', '#',
                  '=', '"', "'s", '0', 'é', '日', '\u00a0', '\u3000', '<|endoftext|>', 'return', ' return', '\n    '];
for (let i = 0; i < 150; ++i) {
  const n = 1 + Math.floor(codeRand() * 30);
  let s = '';
  for (let k = 0; k < n; ++k) s += codePool[Math.floor(codeRand() * codePool.length)];
  codeCorpus.push(s);
}
// codegen's tokenizer.json plus added tokens with each matching flag, in both tries (normalized:
// false are matched in the raw text, normalized: true with the whitespace runs), to pin down how HF's
// AddedVocabulary::find_matches lets the whitespace an lstrip/rstrip token takes interact with the
// whitespace tokens; the C++ test builds the same file (write_codegen_flags_tokenizer).
const codegenFlags = JSON.parse(fs.readFileSync(`${shared}/tokenizers/codegen/tokenizer.json`, 'utf8'));
codegenFlags.added_tokens.push(mk(50295, '<R>', { rstrip: true, special: true }), mk(50296, '<Rn>', { rstrip: true, normalized: true }),
                               mk(50297, '<L>', { lstrip: true, normalized: true }), mk(50298, '<Lr>', { lstrip: true, special: true }),
                               mk(50299, 'foo_bar', { single_word: true, normalized: true }),
                               mk(50300, '<both>', { lstrip: true, rstrip: true, normalized: true }), mk(50301, ' dog', { normalized: true }));
fs.writeFileSync('/tmp/codegen_flags_tokenizer.json', JSON.stringify(codegenFlags));
const codegenFlagTexts = ['<R>    x', '<Rn>    x', '<Rn>  \t\t  x', '<Rn>' + sp(40) + 'x', '<Rn>' + sp(33), '<Rn> dog', '<Rn>  dog',
  '<R> dog', 'x    <L>', 'x    <Lr>', 'x\t\t<L>', 'x' + sp(40) + '<L>', '<Rn>    <L>', '<R>    <Lr>', '<Rn>  <Lr>',
  'a    <both>    b', '<both><both>  <both>', '<both>\t\t\t<both>', '    foo_bar\n', '\tfoo_bar  ', 'xfoo_bar', 'foo_bar_',
  '(foo_bar)', '  foo_bar  foo_bar', 'the dog', 'the  dog', 'hotdog', ' dog dog  dog', '<Rn>\n\n  x', '<R>\r\n    y',
  '<L>', '<Rn>', '  <both>  ', 'x \u00a0 <L> \u3000 <Rn> \u2003 y', '<|endoftext|>    <Rn>    <|endoftext|>'];
// Decoding the added whitespace tokens themselves, alone and between byte-level tokens.
const codeDecodeIds = [[50257], [50286], [50294], [50287, 50257], [198, 50284, 7783, 352], [50256, 50284, 50256],
                       [220, 50286, 220], [197, 50294, 197], [4299, 277, 33529, 198, 50280, 7783, 352, 198, 50293, 6603]];

(async () => {
  const all = Object.entries(dirs).map(([name, dir]) => [name, `${shared}/${dir}/tokenizer.json`, fixed.concat(randoms)]);
  all.push(['llama2+metaspace-first', metaspace('first', false), fixed.concat(randoms.slice(0, 60))]);
  all.push(['llama2+metaspace-always-split', metaspace('always', true), fixed.concat(randoms.slice(0, 60))]);
  all.push(['stories260K+flags', '/tmp/stories260K_flags_tokenizer.json', flagTexts.concat(fixed.slice(0, 20))]);
  // Every line of the codegen blocks is kept (the corpus is the point); they come last and draw from
  // their own generator, so the lines above do not move.
  all.push(['codegen', `${shared}/tokenizers/codegen/tokenizer.json`, codeCorpus.concat(fixed, randoms.slice(0, 60)),
            { keepAll: true, rand: codeRand, decodeIds: codeDecodeIds }]);
  all.push(['codegen+flags', '/tmp/codegen_flags_tokenizer.json', codegenFlagTexts, { keepAll: true, rand: codeRand }]);
  for (const [name, file, texts, opt = {}] of all) {
    const t = Tokenizer.fromFile(file);
    // To keep the test fast, a block keeps its first 61 lines and every third line after them.
    let line = 0;
    const emit = (o) => { if (opt.keepAll || line <= 60 || (line - 60) % 3 === 0) console.log(JSON.stringify(o)); ++line; };
    for (const text of texts) {
      const plain = await t.encode(text, null, { addSpecialTokens: false });
      const ids = plain.getIds();
      const withSpecial = (await t.encode(text, null, { addSpecialTokens: true })).getIds();
      const decoded = await t.decode(ids, false);
      const decodedSkip = await t.decode(ids, true);
      emit({ tokenizer: name, text, ids, ids_special: withSpecial, decoded, decoded_skip: decodedSkip });
    }
    // Decoding arbitrary id sequences (as generation produces: split UTF-8, stray byte tokens, specials).
    const vocab = t.getVocabSize(true);
    const r = opt.rand || rand;
    for (let k = 0; k < 40; ++k) {
      const n = 1 + Math.floor(r() * 12);
      const ids = [];
      for (let i = 0; i < n; ++i) ids.push(r() < 0.3 ? Math.floor(r() * Math.min(vocab, 300)) : Math.floor(r() * vocab));
      const decoded = await t.decode(ids, false), decodedSkip = await t.decode(ids, true);
      emit({ tokenizer: name, kind: 'decode', ids, decoded, decoded_skip: decodedSkip });
    }
    for (const ids of opt.decodeIds || []) {
      const decoded = await t.decode(ids, false), decodedSkip = await t.decode(ids, true);
      emit({ tokenizer: name, kind: 'decode', ids, decoded, decoded_skip: decodedSkip });
    }
  }
})();
