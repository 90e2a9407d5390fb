#!/bin/bash
# Times nmt-flax and the lab's own code (TensorFlow, plus the PyTorch port) back
# to back on this machine, so their speeds can be compared as ratios from one run.
# Every command writes JSON into $OUT; BENCHMARKS.md says what each number means.
#
#   ANCHORS=../shared/anchors TF_PYTHON=.venv-tf/bin/python TORCH_PYTHON=.venv-torch/bin/python \
#     bash benchmarks/compare_with_lab.sh
#
# The anchors (the lab's scripts) are not part of this repository; their README
# says how to make the two virtual environments.
set -euo pipefail
ANCHORS=${ANCHORS:-../shared/anchors}
TF_PYTHON=${TF_PYTHON:-$ANCHORS/.venv-tf/bin/python}
TORCH_PYTHON=${TORCH_PYTHON:-$ANCHORS/.venv-torch/bin/python}
DATA=${NMT_FLAX_DATA:-data}
OUT=${OUT:-runs/bench}
mkdir -p "$OUT"
export NMT_FLAX_DATA=$DATA

python benchmarks/bench.py --units 1024 --steps 5 > "$OUT/jax_nmt_1024.json"
python benchmarks/bench.py --units 256 --steps 10 > "$OUT/jax_nmt_256.json"
python benchmarks/bench.py --task sentiment --units 1024 --steps 5 > "$OUT/jax_sent_1024.json"
python benchmarks/bench.py --task sentiment --units 256 --steps 10 > "$OUT/jax_sent_256.json"
for units in 1024 256; do
  steps=$([ "$units" = 1024 ] && echo 5 || echo 10)
  "$TF_PYTHON" "$ANCHORS/seed_tf_nmt.py" --data "$DATA/cmn-eng.txt" --units "$units" --emb 256 \
    --batch 128 --steps "$steps" --warmup 2 --out "$OUT/tf_nmt_$units.json"
  "$TF_PYTHON" "$ANCHORS/seed_tf_sentiment.py" --data "$DATA/imdb_50k.csv.gz" --units "$units" \
    --steps "$steps" --warmup 2 --out "$OUT/tf_sent_$units.json"
  "$TORCH_PYTHON" "$ANCHORS/torch_nmt.py" --data "$DATA/cmn-eng.txt" --units "$units" \
    --steps "$steps" --out "$OUT/torch_nmt_$units.json"
  "$TORCH_PYTHON" "$ANCHORS/torch_nmt.py" --data "$DATA/cmn-eng.txt" --units "$units" \
    --steps "$steps" --hoist-keys --out "$OUT/torch_nmt_${units}_hoist.json"
done
# A whole epoch as a user runs it (`train.py`, lab hyperparameters, length
# buckets, compilation and validation included), empty and warm compilation
# cache, beside the lab's projected epoch, at both sizes.
python benchmarks/lab_epoch.py --tf-python "$TF_PYTHON" --anchors "$ANCHORS" --data "$DATA" \
  --workdir "$OUT/lab_epoch" > "$OUT/lab_epoch.json"
echo "results in $OUT"
