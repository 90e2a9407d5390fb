"""How text of any length is batched for decoding: padded to few shapes (so few
programs compile), with rows per batch and output lengths kept within a memory
budget."""
import dataclasses

from nmt_flax.decoding.options import DecodeOptions

SHAPE_STEP = 16  # padded lengths beyond the training buckets are multiples of this
WEIGHTS_BUDGET = 2 ** 26  # floats in one batch's attention buffer [rows, max_len, src_len]


@dataclasses.dataclass(frozen=True)
class DecodeShapes:
  """A model's decoding shapes, from its training buckets [(source, target)
  lengths, ascending] and its batch size."""
  buckets: list[tuple[int, int]]
  batch_size: int

  def padded_length(self, length: int, side: int = 0) -> int:
    """The shape for `length` ids of the source (side 0) or target (side 1): the
    smallest training bucket that holds them, else the next multiple of
    SHAPE_STEP, so few shapes are ever compiled."""
    for shape in self.buckets:
      if length <= shape[side]:
        return shape[side]
    return -(-length // SHAPE_STEP) * SHAPE_STEP

  def output_limit(self, src_len: int) -> int:
    """Most output tokens for sources padded to `src_len`: the longest training
    target, scaled up in proportion for sources longer than any in training."""
    max_src, max_tgt = self.buckets[-1]
    if src_len <= max_src:
      return max_tgt
    return -(-src_len * max_tgt // max_src // SHAPE_STEP) * SHAPE_STEP

  def decode_length(self, src_len: int, options: DecodeOptions) -> int:
    """Output positions for sources padded to `src_len`: options.max_len or
    `output_limit`, cut so that one sentence's attention buffer, every beam
    hypothesis included, fits WEIGHTS_BUDGET (an output stopped there has no
    <end>: `nmt_flax.api.Hypothesis.ended`)."""
    wanted = options.max_len or self.output_limit(src_len)
    return max(1, min(wanted, WEIGHTS_BUDGET // (options.hypotheses * src_len)))

  def rows_for(self, src_len: int, max_len: int, sentences: int, beam_size: int = 1) -> int:
    """Rows per batch for `sentences` sentences of this shape: the power of two
    that holds them (a single sentence is not padded to a whole batch), at
    most `batch_size`, halved until the attention buffer of every hypothesis
    [rows, beam_size, max_len, src_len] fits WEIGHTS_BUDGET (a 10,000-character
    sentence decodes alone)."""
    rows = min(self.batch_size, 1 << max(sentences - 1, 0).bit_length())
    while rows > 1 and rows * beam_size * src_len * max_len > WEIGHTS_BUDGET:
      rows //= 2
    return rows
