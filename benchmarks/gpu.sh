#!/bin/bash
# nmt-flax on whatever accelerator JAX finds (run it on a GPU machine; on a CPU
# it runs too, slowly): the speed benchmark at the lab's sizes, one epoch of
# the lab's configuration as a user runs it (train.py wall clock, compilation
# and validation included; the lab reports 42.7 s per epoch on its GPU), and
# file translation (greedy and beam 5). Every result is JSON in $OUT.
#
#   NMT_FLAX_DATA=../shared/data OUT=runs/gpu bash benchmarks/gpu.sh
#
# Needs jax with the accelerator's plugin (e.g. `pip install -U "jax[cuda12]"`).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
python -c "import jax; print(jax.devices())" | tee "$OUT/devices.txt"
python benchmarks/bench.py --units 1024 --steps 10 > "$OUT/bench_nmt_1024.json"
python benchmarks/bench.py --units 256 --steps 10 > "$OUT/bench_nmt_256.json"
python benchmarks/bench.py --task sentiment --units 1024 --steps 10 > "$OUT/bench_sentiment_1024.json"
rm -rf "$OUT/lab_epoch"
start=$EPOCHREALTIME
python train.py --units 1024 --embedding-dim 256 --batch-size 128 --epochs 1 \
  --workdir "$OUT/lab_epoch" > "$OUT/lab_epoch.log" 2>&1
python - "$OUT" "$start" "$EPOCHREALTIME" <<'PY'
import json, sys
out, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
record = json.loads(open(f"{out}/lab_epoch/metrics.jsonl").read().splitlines()[-1])
json.dump({"wall_s": round(end - start, 1), **record}, open(f"{out}/lab_epoch.json", "w"), indent=1)
PY
python benchmarks/translate_bench.py --workdir "$OUT/lab_epoch" --sentences 10000 \
  --one-at-a-time 500 > "$OUT/translate_lab_epoch.json"
echo "results in $OUT"
