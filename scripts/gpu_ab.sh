#!/usr/bin/env bash
# A/B of two builds on one GPU in one device call, for kernel work: the
# working tree ("new") against the same tree with a patch applied ("base").
# `git diff HEAD HEAD~1 > base.patch` makes the last commit the difference;
# a patch that changes one constant compares two settings of it. Both build
# the CLI only; then each shape's P-Tuning v2 step (`ptune bench --profile`,
# batch 8, sequence 512, 20-token prefix, bf16) runs ROUNDS times per build,
# alternating base and new so that clock or thermal drift hits both. Prints
# the mean step and per-op GPU times side by side; logs and ab.json in $OUT.
#
#   OUT=$OUT bash scripts/gpu_ab.sh base.patch         # on the GPU machine
#   BENCH_DEVICE=cpu SMALL=1 bash scripts/gpu_ab.sh base.patch   # checks the script without a GPU
#
# The new build is $BUILD (default build-gpu, configured as gpu_check.sh
# does), so after gpu_check.sh it costs nothing; the base tree is a copy
# under $AB_DIR. Both need about half the machine's cores while they build.
set -uo pipefail
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: gpu_ab.sh BASE_PATCH (a patch that turns this tree into the base)"; exit 2; }
PATCH=$(realpath "$1")
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/gpu_report}
mkdir -p "$OUT"
ROUNDS=${ROUNDS:-2}
DEVICE=${BENCH_DEVICE:-cuda}
AB_DIR=${AB_DIR:-/tmp/ptune-ab}
. scripts/gpu_env.sh

if [ "$DEVICE" = cuda ]; then
  BUILD=${BUILD:-$ROOT/build-gpu}
  CONFIG=(-G Ninja -DPTUNE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 "${CMAKE_DEPS[@]}")
else
  BUILD=${BUILD:-$ROOT/build-ab-cpu}
  CONFIG=(-G Ninja -DCMAKE_BUILD_TYPE=Release "${CMAKE_DEPS[@]}")
fi

# The base tree: the checkout without build folders or git data, patched.
rm -rf "$AB_DIR" && mkdir -p "$AB_DIR/src"
tar -C "$ROOT" --exclude='./build*' --exclude=./.git --exclude=./.deps -cf - . | tar -C "$AB_DIR/src" -xf -
[ -d "$ROOT/.deps" ] && ln -s "$ROOT/.deps" "$AB_DIR/src/.deps"
if ! (cd "$AB_DIR/src" && patch -p1 --quiet --batch < "$PATCH"); then
  echo "gpu_ab: $PATCH does not apply to this tree"
  exit 1
fi

JOBS=$(( $(nproc) > 1 ? $(nproc) / 2 : 1 ))
build() {  # source, build dir, log
  { cmake -S "$1" -B "$2" "${CONFIG[@]}" && cmake --build "$2" -j"$JOBS" --target ptune; } > "$3" 2>&1
}
build "$ROOT" "$BUILD" "$OUT/ab_build_new.log" &
NEW=$!
build "$AB_DIR/src" "$AB_DIR/build" "$OUT/ab_build_base.log" &
BASE=$!
wait $NEW || { echo "gpu_ab: the new build failed, see $OUT/ab_build_new.log"; exit 1; }
wait $BASE || { echo "gpu_ab: the base build failed, see $OUT/ab_build_base.log"; exit 1; }

# name arch layers hidden heads kv_heads intermediate vocab (tests/bench/bench_gpu.py's shapes)
SHAPES=("gpt2-medium gpt2 24 1024 16 16 4096 50257" "llama-1b llama 16 2048 32 8 8192 128256")
RUN=(--batch 8 --seq 512 --prefix 20 --steps 10 --warmup 3)
if [ "${SMALL:-0}" = 1 ]; then
  SHAPES=("gpt2-small-test gpt2 2 64 4 4 256 100" "llama-small-test llama 2 64 4 2 128 100")
  RUN=(--batch 2 --seq 32 --prefix 4 --steps 3 --warmup 1)
fi
for shape in "${SHAPES[@]}"; do
  read -r name arch layers hidden heads kvh inter vocab <<< "$shape"
  for r in $(seq "$ROUNDS"); do
    for v in base new; do
      bin=$BUILD/launch/ptune
      [ $v = base ] && bin=$AB_DIR/build/launch/ptune
      "$bin" bench --device "$DEVICE" --arch "$arch" --layers "$layers" --hidden "$hidden" --heads "$heads" \
        --kv-heads "$kvh" --intermediate "$inter" --vocab "$vocab" "${RUN[@]}" --profile \
        > "$OUT/ab_${name}_${v}_$r.log" 2>&1 || echo "gpu_ab: $v $name round $r failed"
    done
  done
done

python3 - "$OUT" "$ROUNDS" "${SHAPES[@]}" <<'PY'
"""Means over the rounds of each build's step and per-op times, side by side."""
import json, re, sys

out, rounds, shapes = sys.argv[1], int(sys.argv[2]), [s.split()[0] for s in sys.argv[3:]]
report = {}
for name in shapes:
    row = {}
    for v in ("base", "new"):
        steps, ops = [], {}
        for r in range(1, rounds + 1):
            text = open(f"{out}/ab_{name}_{v}_{r}.log").read()
            m = re.search(r"^step ([\d.]+) ms", text, re.M)
            if m:
                steps.append(float(m.group(1)))
            for op, ms in re.findall(r"^  (\w+)\s+([\d.]+) ms", text, re.M):
                ops.setdefault(op, []).append(float(ms))
        row[v] = {"step_ms": sum(steps) / len(steps) if steps else None,
                  "ops_ms": {op: sum(t) / len(t) for op, t in ops.items()}}
    report[name] = row
    b, n = row["base"], row["new"]
    print(f"\n{name} (mean of {rounds} rounds, ms per step)")
    print(f"  {'':36} {'base':>9} {'new':>9} {'change':>8}")
    lines = [("step", b["step_ms"], n["step_ms"])]
    lines += [(op, b["ops_ms"].get(op), n["ops_ms"].get(op))
              for op in sorted(set(b["ops_ms"]) | set(n["ops_ms"]), key=lambda o: -(n["ops_ms"].get(o) or 0))]
    for label, x, y in lines:
        change = f"{100 * (y - x) / x:+.1f}%" if x and y else ""
        fx = f"{x:.3f}" if x is not None else "-"
        fy = f"{y:.3f}" if y is not None else "-"
        print(f"  {label:36} {fx:>9} {fy:>9} {change:>8}")
json.dump(report, open(f"{out}/ab.json", "w"), indent=1)
PY
