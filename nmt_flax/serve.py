"""A local translation and sentiment service with a live attention page.

    python -m nmt_flax.serve --workdir runs/quick [--workdir runs/imdb] [--host 127.0.0.1] [--port 8000]

POST /translate {"texts": [...], "beam_size": 1, "n_best": 1, "alpha": 0.6, "prefixes": [...],
                 "heads": false}
  -> {"translations": [{source, translation, score, attention, source_tokens,
      target_tokens, unknown, truncated, warning, nbest[, heads]}]}
  attention: [target_tokens][source_tokens]; a text of several sentences is
  translated sentence by sentence (block-diagonal attention), as eval.py does;
  heads (when asked): [layers][heads][target_tokens][source_tokens], every
  head of every decoder layer (`Translator.attention_heads`)
POST /classify {"texts": [...]}
  -> {"predictions": [{label, sentiment, probability, tokens, attention, top_words}]}
GET /health, and GET / : a page that draws both pictures in the browser.

Built on FastAPI and uvicorn (optional: `pip install -e ".[serve]"`) over the
same `nmt_flax` API as eval.py. With `--batch-wait-ms W > 0`, requests that
arrive within W ms of each other with the same decoding options share one
jitted device call (`MicroBatcher`); off by default, as on a 2-core CPU it
measured no gain (BENCHMARKS.md). Greedy decoding of sentences up to the
training length is compiled at start-up for every batch size a request can
make (`warm_up`); beam search and longer sentences run in a second lane, so
their first request (which compiles, seconds) never delays the first kind.
Safe by default: binds to 127.0.0.1, answers only Host headers naming this
machine (no DNS rebinding), caps the body size before parsing it, texts per
request and characters per text, and answers every bad request with a 4xx and
a JSON error body.
"""
import argparse
import asyncio
import concurrent.futures
import json
import socket
import sys
import time
import typing
from importlib import resources
from pathlib import Path

import numpy as np

from nmt_flax import api, program
from nmt_flax.api.results import nbest_json
from nmt_flax.config import read_stored
from nmt_flax.utils.errors import UserError
from nmt_flax.visual import plotting

try:
  import fastapi
  import pydantic
  import starlette.exceptions
  from fastapi import responses
except ImportError:  # the [serve] extra is optional; `main` says how to install it
  fastapi = None


class MicroBatcher:
  """Collects the items (texts, or (text, prefix) pairs) of requests arriving
  together (same options) and runs them as one call of `run(items, **options)`
  in a worker thread; each request gets its own slice of the results back."""

  def __init__(self, run, wait_s: float, max_texts: int):
    self.run, self.wait_s, self.max_texts = run, wait_s, max_texts
    self.pending: dict[tuple, list] = {}
    self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)  # one device caller

  async def submit(self, texts: list[str], **options):
    if self.wait_s <= 0:  # micro-batching off: one call per request
      return await asyncio.get_running_loop().run_in_executor(
          self.executor, lambda: self.run(texts, **options))
    key = tuple(sorted(options.items()))
    future = asyncio.get_running_loop().create_future()
    group = self.pending.setdefault(key, [])
    group.append((texts, future))
    if len(group) == 1:  # the first request of a group waits a moment for company
      asyncio.get_running_loop().call_later(self.wait_s, self._flush, key, options)
    elif sum(len(t) for t, _ in group) >= self.max_texts:
      self._flush(key, options)
    return await future

  def _flush(self, key, options) -> None:
    group = self.pending.pop(key, None)
    if group:
      asyncio.get_running_loop().create_task(self._run(group, options))

  async def _run(self, group, options) -> None:
    texts = [t for request_texts, _ in group for t in request_texts]
    try:
      results = await asyncio.get_running_loop().run_in_executor(
          self.executor, lambda: self.run(texts, **options))
    except Exception as e:  # every waiting request gets it
      for _, future in group:
        future.set_exception(e)
      return
    start = 0
    for request_texts, future in group:
      future.set_result(results[start:start + len(request_texts)])
      start += len(request_texts)


# The page's heading and example input (the model's languages; codes without a name show as codes)
LANGUAGE_NAMES = {"zh": "Chinese", "en": "English", "de": "German", "fr": "French", "es": "Spanish",
                  "it": "Italian", "pt": "Portuguese", "ru": "Russian", "ja": "Japanese", "ko": "Korean"}
EXAMPLES = {"zh": "输入中文，例如：我有一隻貓。", "en": "Type English, e.g. I have a cat."}


def translation_json(text: str, hypotheses: list[api.Hypothesis]) -> dict:
  """`text` as given, its best translation's record (`Hypothesis.to_json`) with its alignment
  (`source_tokens`: what the model read) beside, and every hypothesis as `nbest`."""
  best = hypotheses[0]
  return {"source": text, **best.to_json(), **best.alignment(), "nbest": nbest_json(hypotheses)}


def prediction_json(p: api.Prediction) -> dict:
  return {"label": p.label, "sentiment": p.sentiment, "probability": p.probability,
          "tokens": p.tokens, "attention": np.round(p.attention.astype(np.float64), 4).tolist(),
          "top_words": p.top_words(10)}


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class Guard:
  """ASGI middleware run before any parsing: refuses a request whose Host header
  names no host this service answers for (a web page the user opens cannot
  reach it by DNS rebinding: its requests carry the attacker's host name), and
  a body larger than `max_body_bytes` (read no further than that)."""

  def __init__(self, app, allowed_hosts, max_body_bytes: int):
    self.app, self.allowed, self.max_body_bytes = app, set(allowed_hosts), max_body_bytes

  async def __call__(self, scope, receive, send):
    if scope["type"] != "http":
      return await self.app(scope, receive, send)
    headers = dict(scope["headers"])
    host = headers.get(b"host", b"").decode("latin-1")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower()
    if "*" not in self.allowed and name not in self.allowed:
      return await _send_error(send, 403, f"Host {host!r}: not served here (start the service with "
                               f"--allowed-host {name or 'NAME'} to answer it)")
    declared = headers.get(b"content-length", b"0")
    if not declared.isdigit() or int(declared) > self.max_body_bytes:
      return await _send_error(send, 413, f"body: larger than {self.max_body_bytes} bytes")
    body, more = b"", True
    while more:  # a body without a length (chunked) is counted as it arrives
      message = await receive()
      if message["type"] == "http.disconnect":
        return None
      body += message.get("body", b"")
      more = message.get("more_body", False)
      if len(body) > self.max_body_bytes:
        return await _send_error(send, 413, f"body: larger than {self.max_body_bytes} bytes")
    replayed = False

    async def replay():
      nonlocal replayed
      if replayed:
        return await receive()
      replayed = True
      return {"type": "http.request", "body": body, "more_body": False}
    return await self.app(scope, replay, send)


async def _send_error(send, status: int, message: str) -> None:
  body = json.dumps({"error": message}).encode()
  await send({"type": "http.response.start", "status": status,
              "headers": [(b"content-type", b"application/json"),
                          (b"content-length", str(len(body)).encode())]})
  await send({"type": "http.response.body", "body": body})


def create_app(models: list, max_texts: int = 64, max_chars: int = 2000, batch_wait_ms: float = 0.0,
               max_beam: int = 10, allowed_hosts=LOCAL_HOSTS, reranked=None):
  """The FastAPI app serving `models` (at most one Translator and one Classifier),
  answering requests whose Host header names one of `allowed_hosts` ("*": any);
  `reranked`: the Translator reranked (`Translator.reranked_by`) that requests
  with "rerank": true use."""
  translator = next((m for m in models if isinstance(m, api.Translator)), None)
  classifier = next((m for m in models if isinstance(m, api.Classifier)), None)
  Texts = pydantic.conlist(pydantic.constr(min_length=1, max_length=max_chars),  # noqa: N806
                           min_length=1, max_length=max_texts)

  class TranslateRequest(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    texts: Texts
    beam_size: pydantic.conint(ge=1, le=max_beam) = 1
    n_best: pydantic.conint(ge=1, le=max_beam) = 1
    alpha: pydantic.confloat(ge=0, le=10) = 0.6
    mbr: typing.Literal["chrf", "bleu"] | None = None  # rerank the n_best by minimum Bayes risk
    rerank: bool = False  # reorder the n_best by the reranking model (serve --rerank)
    prefixes: list[pydantic.constr(max_length=max_chars) | None] | None = None  # per text, or None
    heads: bool = False  # also every head of every layer (the page's layer and head picker)

  class ClassifyRequest(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    texts: Texts

  app = fastapi.FastAPI(title="nmt-flax", docs_url=None, redoc_url=None)
  # A text and its prefix each escape to at most 12 bytes a character in JSON (a
  # character outside the BMP is two \\uXXXX escapes); 64 KiB for the rest of the body
  app.add_middleware(Guard, allowed_hosts=allowed_hosts,
                     max_body_bytes=max_texts * 2 * (max_chars * 12 + 8) + 65536)
  wait_s = batch_wait_ms / 1000
  # Two lanes, each with its own device-calling thread: greedy requests whose
  # sentences fit the training lengths (compiled at start-up) never wait
  # behind beam search or long sentences (which may compile first).
  def translate_items(items: list[tuple[str, str | None]], rerank: bool = False, **options):  # (text, prefix)
    return (reranked if rerank else translator).nbest([t for t, _ in items], [p for _, p in items], **options)
  batchers = {"translate": MicroBatcher(translate_items, wait_s, max_texts) if translator else None,
              "translate_long": MicroBatcher(translate_items, wait_s, max_texts) if translator else None,
              "classify": MicroBatcher(classifier.classify, wait_s, max_texts) if classifier else None}

  def error(status: int, message: str):
    return responses.JSONResponse({"error": message}, status_code=status)

  @app.exception_handler(starlette.exceptions.HTTPException)
  async def http_error(_request, exc):  # 404, 405: the same JSON shape as every other error
    return error(exc.status_code, str(exc.detail))

  @app.exception_handler(fastapi.exceptions.RequestValidationError)
  async def bad_request(_request, exc):
    first = exc.errors()[0]
    where = ("body" if first.get("type") == "json_invalid" else
             ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body")
    return error(422, f"{where}: {first.get('msg', 'invalid')}")

  @app.exception_handler(Exception)
  async def unexpected(_request, exc):  # never a traceback in a response
    return error(500, f"internal error ({type(exc).__name__}); the service keeps running")

  @app.get("/health")
  async def health():
    return {"status": "ok", "translate": translator is not None, "classify": classifier is not None,
            "workdirs": [str(m.workdir) for m in models]}

  font_file = plotting.cjk_font_file()

  @app.get("/font")
  async def font():  # the page's Chinese labels, for a browser that has no CJK font of its own
    if font_file is None:
      return error(404, plotting.NO_FONT_NOTE.removeprefix("note: "))
    return responses.FileResponse(font_file, headers={"Cache-Control": "max-age=86400"})

  source_lang, target_lang = (translator.task.config.source_lang, translator.task.config.target_lang) \
      if translator else ("zh", "en")
  # one model's layers and heads to pick (a GRU has one attention; an ensemble no single model's)
  layered = translator is not None and translator.members is None and translator.config.model == "transformer"
  page_text = resources.files("nmt_flax").joinpath("static/index.html").read_text(encoding="utf-8")
  for field, value in {
      "languages": " → ".join(LANGUAGE_NAMES.get(lang, lang) for lang in (source_lang, target_lang)),
      "example": EXAMPLES.get(source_lang, "Type a sentence"),
      # only what the loaded models can show
      "nmt_hidden": "" if translator else " hidden", "sentiment_hidden": "" if classifier else " hidden",
      "views_hidden": "" if layered else " hidden"}.items():
    page_text = page_text.replace("{{" + field + "}}", value)

  @app.get("/", response_class=responses.HTMLResponse)
  async def page():
    return page_text

  @app.post("/translate")
  async def translate(request: TranslateRequest):
    if translator is None:
      return error(404, "no translation model is loaded (start with --workdir of an nmt run)")
    if request.n_best > request.beam_size:
      return error(422, f"n_best: {request.n_best} is more than beam_size {request.beam_size}")
    if request.rerank and reranked is None:
      return error(422, "rerank: no reranking model is loaded (start the service with --rerank WORKDIR)")
    prefixes = request.prefixes or [None] * len(request.texts)
    if len(prefixes) != len(request.texts):
      return error(422, f"prefixes: {len(prefixes)} given for {len(request.texts)} texts")
    try:  # checked alone, before it shares a device call with other requests
      sentences = translator.check_texts(request.texts)
      translator.check_prefixes(sentences, prefixes, beam_size=request.beam_size, n_best=request.n_best)
      longest = max(len(translator.task.source_tokens(s)) for found in sentences for s in found)
      short = request.beam_size == 1 and longest < translator.config.bucket_shapes[-1][0]
      results = await batchers["translate" if short else "translate_long"].submit(
          list(zip(request.texts, prefixes)), beam_size=request.beam_size, n_best=request.n_best,
          alpha=request.alpha, mbr=request.mbr, rerank=request.rerank)
      found = [translation_json(t, h) for t, h in zip(request.texts, results)]
      if request.heads:  # teacher-forced on each best output, off the event loop
        heads = await asyncio.get_running_loop().run_in_executor(
            None, lambda: [translator.attention_heads(h[0]) for h in results])
        for record, every in zip(found, heads):
          record["heads"] = np.round(every.astype(np.float64), 4).tolist()
    except UserError as e:
      return error(422, f"{e.option} {e.message}" if e.option in ("texts", "prefixes") else str(e))
    return {"translations": found}

  @app.post("/classify")
  async def classify(request: ClassifyRequest):
    if classifier is None:
      return error(404, "no sentiment model is loaded (start with --workdir of a sentiment run)")
    try:
      classifier.check_texts(request.texts)  # alone, before it shares a device call
      results = await batchers["classify"].submit(request.texts)
    except UserError as e:
      return error(422, f"texts {e.message}" if e.option == "reviews" else str(e))
    return {"predictions": [prediction_json(p) for p in results]}

  return app


def warm_up(models: list, max_texts: int) -> float:
  """Compiles the shapes requests meet (each model's `warm_up`); returns the seconds it took."""
  started = time.time()
  for model in models:
    model.warm_up(max_texts)
  return time.time() - started


def parser() -> argparse.ArgumentParser:
  p = program.Parser(prog="python -m nmt_flax.serve", description=__doc__,
                 formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--workdir", action="append", required=True,
                 help="a trained workdir (repeatable: one nmt and one sentiment)")
  program.add_checkpoint_flags(p)  # as eval.py: which checkpoint, averaging, raw or moving-average weights
  p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
  p.add_argument("--port", type=int, default=8000)
  p.add_argument("--max-texts", type=int, default=64, help="texts per request (default 64)")
  p.add_argument("--max-chars", type=int, default=2000, help="characters per text (default 2000)")
  p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                 help="also answer requests whose Host header is NAME (repeatable; '*': any). "
                 "By default only 127.0.0.1, localhost, ::1 and --host, so a web page cannot "
                 "reach the service by DNS rebinding")
  p.add_argument("--rerank", action="append", default=None, metavar="WORKDIR",
                 help="a translation model (e.g. trained with --right-to-left) that reorders the n-best "
                 "lists of requests with \"rerank\": true (eval.py --rerank; repeated: their ensemble)")
  p.add_argument("--rerank-weight", type=float, default=0.5, metavar="W",
                 help="its weight in [0, 1] (default 0.5)")
  p.add_argument("--batch-wait-ms", type=float, default=0.0,
                 help="how long a request waits for others to share its device call (default 0: off, "
                 "the faster choice on a CPU, BENCHMARKS.md; try 5 on an accelerator)")
  return p


def main(argv) -> None:
  args = parser().parse_args(argv)
  for flag in ("max_texts", "max_chars"):
    if getattr(args, flag) < 1:
      raise UserError(f"--{flag.replace('_', '-')} must be positive, got {getattr(args, flag)}")
  if fastapi is None:
    raise UserError('the service needs FastAPI and uvicorn: pip install -e ".[serve]"')
  import uvicorn
  tasks_given = [read_stored(Path(w)).task for w in args.workdir]
  if len(set(tasks_given)) != len(tasks_given):
    raise UserError(f"--workdir: give at most one workdir per task (got {', '.join(tasks_given)})")
  try:  # the port is checked before minutes of loading and compiling, not after
    with socket.socket() as probe:
      probe.bind((args.host, args.port))
  except (OSError, OverflowError) as e:
    reason = getattr(e, "strerror", None) or str(e)
    raise UserError(f"--host {args.host} --port {args.port}: cannot listen there ({reason})") from None
  program.setup_jax()
  models = [program.load_model(args, w) for w in args.workdir]
  translator = next((m for m in models if isinstance(m, api.Translator)), None)
  if args.rerank and translator is None:
    raise UserError("--rerank: reorders translations; give the --workdir of a translation model")
  reranked = translator.reranked_by(api.load(args.rerank), args.rerank_weight) if args.rerank else None
  seconds = warm_up(models, args.max_texts)
  print(f"compiled in {seconds:.1f} s; serving {', '.join(str(m.workdir) for m in models)} "
        f"on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
  hosts = [*LOCAL_HOSTS, *([args.host] if args.host not in ("0.0.0.0", "::") else []),
           *args.allowed_host]
  uvicorn.run(create_app(models, args.max_texts, args.max_chars, args.batch_wait_ms,
                         allowed_hosts=[h.lower() for h in hosts], reranked=reranked),
              host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
  sys.exit(program.run(main, sys.argv[1:]))
