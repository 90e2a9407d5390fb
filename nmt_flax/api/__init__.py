"""The Python API the command-line tools are built on.

    import nmt_flax
    model = nmt_flax.load("runs/quick")            # best checkpoint of a workdir
    for t in model.translate(["我有一隻貓。"]):     # a Translator (task nmt)
      print(t.text, t.attention.shape)             # [output_len, source_len]
    clf = nmt_flax.load("runs/imdb")               # a Classifier (task sentiment)
    clf.classify(["A wonderful film."])[0].probability
"""
from pathlib import Path

from nmt_flax import tasks
from nmt_flax.api.classifier import Classifier
from nmt_flax.api.loaded import LoadedModel
from nmt_flax.api.results import Hypothesis, PairScore, Prediction, TranslatedLine
from nmt_flax.api.translator import Translator
from nmt_flax.config import read_stored
from nmt_flax.tasks import sentiment, translation
from nmt_flax.tasks.ensemble import Ensemble
from nmt_flax.utils.errors import UserError

__all__ = ["load", "Translator", "Classifier", "LoadedModel", "Hypothesis", "TranslatedLine", "PairScore",
           "Prediction", "API"]


def load(workdir: str | Path | list, checkpoint: str = "best", average_last: int = 0,
         average_best: int = 0, weights: str | None = None) -> Translator | Classifier:
  """Loads a trained workdir as a Translator (nmt) or a Classifier (sentiment):
  the `checkpoint` (best, latest or a step), or the parameters of the
  `average_last` latest or `average_best` best checkpoints averaged; `weights`
  raw or ema (a run trained with --ema; its default). A list of
  translation workdirs loads an ensemble (`nmt_flax.tasks.ensemble`): one Translator
  whose every decoding step averages the models' log-probabilities."""
  if isinstance(workdir, (list, tuple)):
    if len(workdir) > 1:
      models = [load(w, checkpoint, average_last, average_best, weights) for w in workdir]
      for w, model in zip(workdir, models):
        if not isinstance(model, Translator):
          raise UserError(f"{w}: holds a {model.config.task} model; ensembles are of translation "
                          "models", option="workdir")
      ensemble = Translator(Ensemble([m.task for m in models], [str(w) for w in workdir]),
                            tuple(m.params for m in models), models[0].workdir)
      ensemble.members = [{"workdir": str(m.workdir), "step": m.step,
                           **({"averaged_steps": m.averaged} if m.averaged else {}),
                           **({"weights": m.weights} if m.weights != "raw" else {})} for m in models]
      return ensemble
    workdir = workdir[0]
  task = read_stored(Path(workdir)).task
  return API[tasks.task_class(task)].from_workdir(Path(workdir), checkpoint, average_last, average_best,
                                                  weights)


# What `load` returns for each task class of the registry.
API: dict[type[tasks.Task], type[LoadedModel]] = {translation.Translation: Translator,
                                              sentiment.Sentiment: Classifier}
