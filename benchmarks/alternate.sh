#!/bin/bash
# Step times of nmt-flax and the lab's TensorFlow code, alternated ROUNDS times
# at one setting, so that a slowdown of the shared machine hits both alike;
# prints each round's pair and the median ratio as JSON.
#
#   ANCHORS=../shared/anchors TF_PYTHON=.venv-tf/bin/python \
#     bash benchmarks/alternate.sh nmt 256      # or: sentiment 256, nmt 1024 ...
set -euo pipefail
TASK=${1:?task: nmt or sentiment}; UNITS=${2:?units}; ROUNDS=${ROUNDS:-3}; STEPS=${STEPS:-8}
case "$TASK" in nmt|sentiment) ;; *) echo "error: task $TASK: expected nmt or sentiment" >&2; exit 2;; esac
ANCHORS=${ANCHORS:-../shared/anchors}
TF_PYTHON=${TF_PYTHON:-$ANCHORS/.venv-tf/bin/python}
DATA=${NMT_FLAX_DATA:-data}
export NMT_FLAX_DATA=$DATA
tmp=$(mktemp -d)
for round in $(seq "$ROUNDS"); do
  if [ "$TASK" = nmt ]; then
    python benchmarks/bench.py --units "$UNITS" --steps "$STEPS" --skip bucketed,greedy \
      > "$tmp/ours_$round.json"
    "$TF_PYTHON" "$ANCHORS/seed_tf_nmt.py" --data "$DATA/cmn-eng.txt" --units "$UNITS" --emb 256 \
      --batch 128 --steps "$STEPS" --warmup 2 --out "$tmp/lab_$round.json" > /dev/null
  else
    python benchmarks/bench.py --task sentiment --units "$UNITS" --steps "$STEPS" > "$tmp/ours_$round.json"
    "$TF_PYTHON" "$ANCHORS/seed_tf_sentiment.py" --data "$DATA/imdb_50k.csv.gz" --units "$UNITS" \
      --steps "$STEPS" --warmup 2 --out "$tmp/lab_$round.json" > /dev/null
  fi
done
python - "$tmp" "$ROUNDS" "$TASK" "$UNITS" <<'PY'
import json, statistics, sys
tmp, rounds, task, units = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
pairs = []
for r in range(1, rounds + 1):
  ours = json.load(open(f"{tmp}/ours_{r}.json"))
  ours_s = ours["padded"]["median_step_s"] if task == "nmt" else ours["median_step_s"]
  lab_s = json.load(open(f"{tmp}/lab_{r}.json"))["median_step_s"]
  pairs.append({"lab_s": round(lab_s, 4), "ours_s": round(ours_s, 4), "speedup": round(lab_s / ours_s, 2),
                "matmul_gflops": ours["matmul_gflops"]})
print(json.dumps({"task": task, "units": units, "rounds": pairs,
                  "median_speedup": statistics.median(p["speedup"] for p in pairs)}, indent=1))
PY
rm -rf "$tmp"
