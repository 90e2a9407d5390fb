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


def check(config) -> None:
  """What the task of `config` asks of its options beyond `nmt_flax.config.validate`."""
  task_class(config.task).check(config)


def get(config, vocabs: dict[str, Vocabulary] | None = None) -> Task:
  """The task of `config.task` (its options checked), with its vocabularies when they are known."""
  check(config)
  return task_class(config.task)(config, vocabs)
