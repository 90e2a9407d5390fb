"""The tasks by name: what `--task` (and a workdir's config) chooses."""
from nmt_flax.tasks.base import Task
from nmt_flax.tasks.sentiment import Sentiment
from nmt_flax.tasks.translation import Translation
from nmt_flax.text.vocab import Vocabulary
from nmt_flax.utils.errors import UserError

REGISTRY: dict[str, type[Task]] = {cls.name: cls for cls in (Translation, Sentiment)}


def task_class(name: str) -> type[Task]:
  if name not in REGISTRY:
    raise UserError(f"{name!r}: expected one of {', '.join(REGISTRY)}", option="task")
  return REGISTRY[name]


def get(config, vocabs: dict[str, Vocabulary] | None = None) -> Task:
  """The task of `config.task`, with its vocabularies when they are known."""
  return task_class(config.task)(config, vocabs)
