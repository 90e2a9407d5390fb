"""Does translating a paragraph sentence by sentence cost quality? Prints JSON.

    python benchmarks/paragraphs.py --workdir runs/quick [--split test] [--sentences 2]

Paragraphs are made from consecutive pairs of the held-out split (each
paragraph: `--sentences` source sentences joined, their references joined),
kept where the whole paragraph fits the model's longest training source, so
the model could also read it whole. Each is translated two ways, with the
same greedy decoder: split into sentences (what `translate`, `--translate`,
`--input` and `/translate` do, `nmt_flax.text.sentences`) and whole (one input).
BLEU and chrF (sacrebleu, as eval.py) of both against the joined references.
"""
import argparse
import json

import nmt_flax
from nmt_flax import program
from nmt_flax.tasks import metrics


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--split", default="test")
  parser.add_argument("--sentences", type=int, default=2, help="sentences per paragraph")
  args = parser.parse_args(argv)
  program.setup_jax()
  translator = nmt_flax.load(args.workdir)
  split = translator.split(args.split)
  sources, references = split.extras["sources"], split.extras["references"]
  longest = translator.config.bucket_shapes[-1][0] - 1  # characters, <end> aside
  paragraphs, joined_references = [], []
  for start in range(0, len(sources) - args.sentences + 1, args.sentences):
    text = "".join(sources[start:start + args.sentences])
    if len(text) <= longest:
      paragraphs.append(text)
      joined_references.append(" ".join(references[start:start + args.sentences]))
  split_hyps = [t.text for t in translator.translate(paragraphs)]
  whole_hyps = [h[0].text for h in translator.sentence_nbest(paragraphs)]
  refs = joined_references  # already in the lab's tokenisation, as eval.py scores them
  result = {"workdir": args.workdir, "split": args.split, "sentences_per_paragraph": args.sentences,
            "paragraphs": len(paragraphs), "longest_characters": longest,
            "split_into_sentences": metrics.translation_scores(split_hyps, refs),
            "whole": metrics.translation_scores(whole_hyps, refs)}
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
