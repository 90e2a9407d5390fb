import pytest

import nmt_flax
from nmt_flax.compare_attention import best_validation


@pytest.mark.xdist_group("transformer_workdir")  # the shared workdir, trained with --ema, translates a little
def test_the_comparisons_greedy_scores_are_the_loaded_models_decoded_again(transformer_workdir):
  """best_validation reads metrics.jsonl instead of decoding: it must be what
  decoding the loaded (best; with --ema, averaged) model on validation gives."""
  workdir = transformer_workdir
  model = nmt_flax.load(workdir)
  decoded = model.evaluate(model.split("val"))
  assert best_validation(workdir) == {"bleu": decoded["bleu"], "chrf": decoded["chrf"]}
  assert decoded["chrf"] > 0
