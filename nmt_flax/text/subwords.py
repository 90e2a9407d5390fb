"""SentencePiece subwords (BPE or unigram) for either side of a pair
(`--source-tokens`, `--target-tokens`): learnt from the training side and
stored inside that side's vocabulary file, so a workdir carries everything that
maps text to ids and back."""
import functools
import io

MARK = "\u2581"  # SentencePiece's word-start marker


def _sentencepiece():
  try:
    import sentencepiece
  except ImportError:
    from nmt_flax.utils.errors import UserError
    raise UserError('subword tokens need SentencePiece: pip install -e ".[subwords]"',
                    option="target_tokens") from None
  return sentencepiece


def learn(sentences: list[list[str]], size: int, model_type: str = "bpe") -> bytes:
  """A `model_type` (bpe or unigram) model, serialised, of at most `size`
  pieces learnt from tokenised sentences. Deterministic (one thread); every
  training character is covered and nothing is normalised, so
  `join(split(words)) == words`."""
  spm = _sentencepiece()
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(" ".join(s) for s in sentences), model_writer=model,
      vocab_size=size, model_type=model_type, character_coverage=1.0,
      normalization_rule_name="identity", add_dummy_prefix=True, unk_id=0, bos_id=-1,
      eos_id=-1, hard_vocab_limit=False, num_threads=1, minloglevel=2)
  return model.getvalue()


class Segmenter:
  """Words <-> pieces with a model from `learn`."""

  def __init__(self, model: bytes):
    self.processor = _sentencepiece().SentencePieceProcessor(model_proto=model)

  def split(self, words: list[str]) -> list[str]:
    """['unbelievable', '!'] -> ['▁un', 'believ', 'able', '▁!']."""
    return self.processor.encode(" ".join(words), out_type=str)

  @staticmethod
  def join(pieces: list[str]) -> list[str]:
    """The inverse of `split`: pieces -> words."""
    return "".join(pieces).replace(MARK, " ").split()


@functools.lru_cache(maxsize=8)
def segmenter(model: bytes) -> Segmenter:
  """One `Segmenter` per model (loading one parses the model)."""
  return Segmenter(model)
