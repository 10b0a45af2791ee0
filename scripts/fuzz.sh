#!/usr/bin/env bash
# Fuzzes the parsers of user input (tests/fuzz: recipes, data files,
# safetensors, tokenizers, config.json, dataset templates) with libFuzzer
# under ASan + UBSan.
# Bad input must end in a ptune::Error; a crash, a sanitizer report or any
# other exception is a finding, saved under build-fuzz/findings/.
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET=60] [TARGET…]
# Needs clang (apt: clang); not part of CI. A finding becomes a unit test
# next to the parser's own tests, with the input that failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECONDS_PER_TARGET=${1:-60}
shift || true
BUILD=$ROOT/build-fuzz
mkdir -p "$BUILD"
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPTUNE_TESTS=OFF \
  -DPTUNE_FUZZ=ON -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
  > "$BUILD/configure.log"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(recipe records safetensors tokenizer model_config dataset)
cmake --build "$BUILD" -j "$(nproc)" --target "${TARGETS[@]/#/fuzz_}"

# Seed corpora from what the repository already holds (nothing is copied
# into it): recipes, the shared datasets' first lines, fixture files.
CORPUS=$BUILD/corpus
FINDINGS=$BUILD/findings
mkdir -p "$FINDINGS"
seed() { mkdir -p "$CORPUS/$1"; }
seed recipe && cp recipes/*.yaml "$CORPUS/recipe/"
# A recipe with command-line overrides after it, \x1f between the parts.
printf '%s\x1fmethod.name=prefix-tuning\x1ftrain.lr=0.1\x1fdata.verbalizer={positive: great, negative: bad}\x1fmethod.layers=[0,1]' \
  "$(cat recipes/quickstart.yaml)" > "$CORPUS/recipe/overrides"
seed records
for f in ../shared/datasets/*/train.jsonl; do
  [ -f "$f" ] && head -c 4000 "$f" > "$CORPUS/records/$(basename "$(dirname "$f")").jsonl"
done
head -c 4000 recipes/data/quickstart/train.jsonl > "$CORPUS/records/quickstart.jsonl"
seed safetensors
find tests/golden/fixtures -name '*.safetensors' -size -64k | head -16 | while read -r f; do
  cp "$f" "$CORPUS/safetensors/$(echo "$f" | tr / _)"
done
seed model_config
find tests/golden/fixtures -name config.json | while read -r f; do cp "$f" "$CORPUS/model_config/$(echo "$f" | tr / _)"; done
seed tokenizer
# First byte even: the rest is a tokenizer.json; odd: text for a fixture tokenizer.
for t in misc_wordlevel misc_bpe misc_unigram misc_wordpiece misc_precompiled; do
  { printf '\x00'; cat "tests/golden/fixtures/tokenizers/$t/tokenizer.json"; } > "$CORPUS/tokenizer/$t"
done
printf '\x01Hello world' > "$CORPUS/tokenizer/text1"
printf '\x03caf\xc3\xa9 na\xc3\xafve, 123 tokens!' > "$CORPUS/tokenizer/text2"
seed dataset
# SETTINGS (task = s%4, truncation = s/4%3, prepended = s/12%3, tokenizer = s/36%2,
# labels optional = s/72%2), MAX_LENGTH, TEXT \x1f TEXT_PAIR \x1f JSONL records.
R='{"sentence": "a good movie", "premise": "It rains.", "hypothesis": "It is wet.", "label": 1, "answer": "yes"}
{"sentence": "not good at all", "premise": "x", "hypothesis": "y", "label": "0", "answer": "no"}'
printf '\x00\x20{sentence}\x1f\x1f%s' "$R" > "$CORPUS/dataset/classification"
printf '\x01\x10{sentence} It was [MASK].\x1f\x1f%s' "$R" > "$CORPUS/dataset/verbalizer"
printf '\x02\x30Q: {premise} [P*2] A:\x1f\x1f%s' "$R" > "$CORPUS/dataset/causal_lm"
printf '\x24\x08[P*3]{premise}\x1f{hypothesis}\x1f%s' "$R" > "$CORPUS/dataset/pair"
W='{"tokens": ["EU", "rejects", "German", "call"], "label": ["1", "0", "1", 0]}
{"tokens": "raw words here", "label": ["0", "0", "1"]}
{"tokens": []}'
printf '\x03\x08{sentence}\x1f\x1f%s' "$W" > "$CORPUS/dataset/tagging"
printf '\x4b\x20{sentence}\x1f\x1f%s' "$W" > "$CORPUS/dataset/tagging_unlabelled"
printf '\x27\x06{sentence}\x1f\x1f%s' "$W" > "$CORPUS/dataset/tagging_gpt2"

status=0
for t in "${TARGETS[@]}"; do
  echo "== fuzz_$t, ${SECONDS_PER_TARGET} s"
  if ! "$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=4096 \
      -artifact_prefix="$FINDINGS/$t-" -print_final_stats=1 "$CORPUS/$t" 2> "$BUILD/fuzz_$t.log"; then
    status=1
    grep -E "escaped|ERROR|runtime error|SUMMARY|Test unit written" "$BUILD/fuzz_$t.log" | head -8
  fi
  grep -E "stat::number_of_executed_units" "$BUILD/fuzz_$t.log" || true
done
exit $status
