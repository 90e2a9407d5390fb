"""How to decode: one set of options for eval.py, the Python API, the service and validation."""
import dataclasses

from nmt_flax.utils.errors import UserError

MBR_UTILITIES = (None, "chrf", "bleu")  # None: no reranking


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
  """How to decode, the same in eval.py, the Python API and validation.

  beam_size 1 is greedy decoding; larger runs beam search, ranking finished
  hypotheses by log-probability / ((5 + length) / 6) ** alpha (GNMT; alpha 0:
  raw log-probability). n_best hypotheses per sentence come back, best first.
  max_len caps the output words (None: the model's longest training target).

  sampling=True draws each token from the model's distribution instead (with
  beam_size 1): its logits divided by `temperature` (0: greedy), restricted to
  the `top_k` most likely tokens (0: all) and to the smallest set whose
  probability reaches `top_p` (nucleus sampling; 1: all); `n_best` samples per
  sentence, drawn with `seed`, come back highest-scoring first (scores: the
  model's log-probabilities, untempered).

  mbr (chrf or bleu): minimum Bayes risk reranking of those n_best hypotheses
  (beam n-best or samples): each ranked by its mean sentence-level `mbr`
  score against the others as references (`nmt_flax.tasks.metrics.mbr_order`),
  so the first is the consensus translation; needs n_best of at least 2.
  """
  beam_size: int = 1
  alpha: float = 0.6
  n_best: int = 1
  max_len: int | None = None
  sampling: bool = False
  temperature: float = 1.0
  top_k: int = 0
  top_p: float = 1.0
  seed: int = 0
  mbr: str | None = None

  def __post_init__(self):
    if not isinstance(self.beam_size, int) or self.beam_size < 1:
      raise UserError(f"{self.beam_size!r}: must be an integer of at least 1", option="beam_size")
    most = 1000 if self.sampling else self.beam_size  # samples are independent rows
    if not isinstance(self.n_best, int) or not 1 <= self.n_best <= most:
      raise UserError(f"{self.n_best!r}: must be between 1 and " + (
          f"{most} (samples)" if self.sampling else f"the beam size {self.beam_size}"), option="n_best")
    if not isinstance(self.alpha, (int, float)) or not 0 <= self.alpha < float("inf"):
      raise UserError(f"{self.alpha!r}: must be a finite number of at least 0", option="alpha")
    if self.max_len is not None and (not isinstance(self.max_len, int) or self.max_len < 1):
      raise UserError(f"{self.max_len!r}: must be a positive integer", option="max_len")
    if self.sampling and self.beam_size != 1:
      raise UserError(f"{self.beam_size}: sampling draws one token at a time; use beam_size 1 "
                      "(n_best samples per sentence)", option="beam_size")
    if not isinstance(self.temperature, (int, float)) or not 0 <= self.temperature < float("inf"):
      raise UserError(f"{self.temperature!r}: must be a finite number of at least 0", option="temperature")
    if not isinstance(self.top_k, int) or self.top_k < 0:
      raise UserError(f"{self.top_k!r}: must be an integer of at least 0 (0: all tokens)", option="top_k")
    if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
      raise UserError(f"{self.top_p!r}: must be in (0, 1]", option="top_p")
    if not isinstance(self.seed, int):
      raise UserError(f"{self.seed!r}: must be an integer", option="seed")
    if self.mbr not in MBR_UTILITIES:
      raise UserError(f"{self.mbr!r}: expected one of {', '.join(map(str, MBR_UTILITIES))}", option="mbr")
    if self.mbr and self.n_best < 2:
      raise UserError(f"{self.n_best}: minimum Bayes risk chooses among candidates: give n_best of at least 2 "
                      "(the beam's best, or samples)", option="n_best")

  @property
  def hypotheses(self) -> int:
    """Rows decoded per sentence: the beam, or the samples."""
    return self.n_best if self.sampling else self.beam_size

  @property
  def name(self) -> str:
    if self.sampling:
      search = (f"sampling {self.n_best} (temperature {self.temperature}, top-k {self.top_k}, "
                f"top-p {self.top_p}, seed {self.seed})")
    else:
      search = "greedy" if self.beam_size == 1 else f"beam {self.beam_size}, alpha {self.alpha}"
    return search + (f", MBR {self.mbr} over {self.n_best}" if self.mbr else "")
