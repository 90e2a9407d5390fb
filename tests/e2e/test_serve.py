"""The local service: every endpoint and every error through FastAPI's test
client, micro-batching under concurrent requests, and the page in a real browser."""
import asyncio
import dataclasses
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import httpx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fastapi.testclient import TestClient

import nmt_flax
from nmt_flax.decoding.options import DecodeOptions
from nmt_flax.serve import create_app
from tests.conftest import ROOT, free_port


@pytest.fixture(scope="module")
def models(nmt_workdir, sentiment_workdir):
  return nmt_flax.load(nmt_workdir), nmt_flax.load(sentiment_workdir)


def local_client(app) -> TestClient:
  return TestClient(app, base_url="http://localhost:8000")  # a Host the service answers


@pytest.fixture(scope="module")
def client(models):
  return local_client(create_app(list(models), max_texts=8, max_chars=50))


def test_health_translate_and_classify_answer_what_the_api_answers(client, models):
  translator, classifier = models
  assert client.get("/health").json()["status"] == "ok"
  page = client.get("/").text  # headed with the model's languages
  assert "<canvas" not in page and 'id="heatmap"' in page and "<h2>Chinese → English</h2>" in page
  assert "{{" not in page
  font = client.get("/font")  # the page's Chinese glyphs, whatever the browser has
  assert font.status_code == 200 and font.content[:4] in (b"OTTO", b"\x00\x01\x00\x00", b"ttcf")
  texts = ["我有一隻貓。", "你今晚會去派對嗎?我有一隻貓。"]
  response = client.post("/translate", json={"texts": texts, "beam_size": 2, "n_best": 2})
  body = response.json()
  expected = translator.nbest(texts, beam_size=2, n_best=2)
  for text, got, hyps in zip(texts, body["translations"], expected):
    assert got["source"] == text  # as given; what the model read is source_tokens
    assert got["translation"] == hyps[0].text and len(got["nbest"]) == 2
    assert got["source_tokens"] == hyps[0].source + ["<end>"]  # a paragraph: both sentences
    assert np.asarray(got["attention"]).shape == (len(got["target_tokens"]), len(got["source_tokens"]))
    assert got["source_tokens"][-1] == got["target_tokens"][-1] == "<end>"
  reranked = client.post("/translate", json={"texts": texts, "beam_size": 2, "n_best": 2, "mbr": "chrf"}).json()
  assert [got["nbest"] for got in reranked["translations"]] == \
      [[{"translation": h.text, "score": h.score} for h in hyps]
       for hyps in translator.nbest(texts, beam_size=2, n_best=2, mbr="chrf")]
  led = client.post("/translate", json={"texts": texts, "prefixes": [None, "she has"]}).json()
  assert led["translations"][1]["translation"] == translator.translate(texts, [None, "she has"])[1].text
  assert led["translations"][1]["target_tokens"][:2] == ["she", "has"]
  [paragraph] = client.post("/translate", json={"texts": texts[1:], "heads": True}).json()["translations"]
  np.testing.assert_allclose(paragraph["heads"], [[paragraph["attention"]]], atol=2e-4)  # one layer, one head
  assert "heads" not in body["translations"][0]  # only when asked
  # weights rounded to 4 decimals as decimals (not float32 noise such as 0.04610000178217888)
  assert not re.search(r"\d\.\d{5,}", response.text.split('"attention"')[1].split("]]")[0])
  reviews = ["A wonderful, moving film.", "Dull and far too long."]
  body = client.post("/classify", json={"texts": reviews}).json()
  for got, p in zip(body["predictions"], classifier.classify(reviews)):
    assert (got["label"], got["sentiment"], got["tokens"]) == (p.label, p.sentiment, p.tokens)
    assert got["probability"] == pytest.approx(p.probability) and got["top_words"] == p.top_words(10)


@pytest.mark.parametrize("path, body, status, fragment", [
    ("/translate", b"{not json", 422, "body"),
    ("/translate", {"texts": "我有一隻貓。"}, 422, "texts"),
    ("/translate", {"texts": []}, 422, "texts"),
    ("/translate", {"texts": ["我"] * 9}, 422, "texts"),
    ("/translate", {"texts": ["我" * 51]}, 422, "texts.0"),
    ("/translate", {"texts": [""]}, 422, "texts.0"),
    ("/translate", {"texts": [" \t "]}, 422, "texts #1: the text is empty"),
    ("/translate", {"texts": [3]}, 422, "texts.0"),
    ("/translate", {"texts": ["我"], "beam_size": 0}, 422, "beam_size"),
    ("/translate", {"texts": ["我"], "beam_size": 2, "n_best": 3}, 422, "n_best"),
    ("/translate", {"texts": ["我"], "mbr": "chrf"}, 422, "n_best 1: minimum Bayes risk"),
    ("/translate", {"texts": ["我"], "beam_size": 2, "n_best": 2, "mbr": "meteor"}, 422, "mbr"),
    ("/translate", {"texts": ["我"], "unknown": 1}, 422, "unknown"),
    ("/translate", {"texts": ["我"], "heads": "all"}, 422, "heads"),
    ("/translate", {"texts": ["我", "你"], "prefixes": ["i"]}, 422, "prefixes: 1 given for 2 texts"),
    ("/translate", {"texts": ["我"], "prefixes": ["a " * 20]}, 422, "prefixes #1: 20 tokens"),
    ("/classify", {"texts": ["!!! 42"]}, 422, "texts #1: no words left"),
    ("/classify", {}, 422, "texts"),
    ("/nowhere", {"texts": ["x"]}, 404, "Not Found"),
])
def test_every_bad_request_gets_a_4xx_with_a_json_error_and_the_service_keeps_serving(
    client, path, body, status, fragment):
  response = (client.post(path, content=body, headers={"Content-Type": "application/json"})
              if isinstance(body, bytes) else client.post(path, json=body))
  assert response.status_code == status, response.text
  assert fragment in response.json()["error"] and "Traceback" not in response.text
  assert client.post("/translate", json={"texts": ["我有一隻貓。"]}).status_code == 200
  wrong_method = client.get("/translate")
  assert wrong_method.status_code == 405 and wrong_method.json() == {"error": "Method Not Allowed"}


def test_other_hosts_and_oversized_bodies_are_refused_before_parsing(client):
  for host in ("evil.example", "evil.example:8000", "127.0.0.1.nip.io"):  # DNS rebinding
    response = client.post("/translate", json={"texts": ["我"]}, headers={"Host": host})
    assert response.status_code == 403 and "not served here" in response.json()["error"]
  for host in ("127.0.0.1:8000", "localhost", "[::1]:8000"):
    assert client.post("/translate", json={"texts": ["我"]}, headers={"Host": host}).status_code == 200
  huge = b'{"texts": ["' + b"x" * 4_000_000 + b'"]}'
  response = client.post("/translate", content=huge, headers={"Content-Type": "application/json"})
  assert response.status_code == 413 and response.json()["error"].startswith("body: larger than")

  def chunked():  # no Content-Length: counted as it arrives
    for _ in range(100):
      yield b"x" * 100_000
  response = client.post("/translate", content=chunked(), headers={"Content-Type": "application/json"})
  assert response.status_code == 413


def test_the_largest_valid_request_is_not_too_large(models):
  """64 texts and 64 prefixes of 2,000 characters outside the BMP (12 bytes each
  in escaped JSON, 3 MB): within the schema, so parsed (and refused for its
  n_best alone), never 413."""
  client = local_client(create_app([models[0]]))  # the service's defaults: 64 texts, 2,000 characters
  wide = "\U00020000" * 2000  # 𠀀, escaped as two \\uXXXX
  body = json.dumps({"texts": [wide] * 64, "prefixes": [wide] * 64, "beam_size": 1, "n_best": 2})
  response = client.post("/translate", content=body, headers={"Content-Type": "application/json"})
  assert response.status_code == 422 and response.json()["error"].startswith("n_best: 2 is more")


def test_a_service_without_a_model_for_the_task_says_so_and_its_page_hides_that_task(models):
  client = local_client(create_app([models[0]]))
  response = client.post("/classify", json={"texts": ["good"]})
  assert response.status_code == 404 and "no sentiment model" in response.json()["error"]
  page = client.get("/").text  # a GRU model has one attention: no layer or head to pick
  assert '<section id="sentiment" hidden>' in page and '<span id="views" hidden>' in page
  assert '<section id="nmt">' in page
  page = local_client(create_app([models[1]])).get("/").text
  assert '<section id="nmt" hidden>' in page and '<section id="sentiment">' in page


@pytest.mark.xdist_group("r2l_workdir")  # with tests/api/test_rerank.py, which trains it
def test_rerank_requests_use_the_reranking_model_and_need_one(models, r2l_workdir):
  translator = models[0]
  reranked = translator.reranked_by(nmt_flax.load(r2l_workdir), 1.0)
  client = local_client(create_app([translator], reranked=reranked))
  texts = ["我有一隻貓。", "她喜歡茶。"]
  response = client.post("/translate", json={"texts": texts, "beam_size": 3, "n_best": 3, "rerank": True})
  expected = reranked.nbest(texts, beam_size=3, n_best=3)
  for got, hypotheses in zip(response.json()["translations"], expected):
    assert [n["translation"] for n in got["nbest"]] == [h.text for h in hypotheses]
    assert [n["score"] for n in got["nbest"]] == pytest.approx([h.score for h in hypotheses], rel=1e-5)
  for body in ({"n_best": 1}, {"n_best": 3, "mbr": "chrf"}):  # the API's own check, as a 422
    response = client.post("/translate", json={"texts": texts, "beam_size": 3, "rerank": True, **body})
    assert response.status_code == 422 and "reorders an n-best list" in response.json()["error"]
  response = local_client(create_app([translator])).post(
      "/translate", json={"texts": texts, "beam_size": 3, "n_best": 3, "rerank": True})
  assert response.status_code == 422 and "no reranking model is loaded" in response.json()["error"]


def test_warm_up_sentences_have_each_buckets_length_on_a_word_source(nmt_config):
  """A word source (en) gets sentences of as many words as each bucket holds
  (repeating one Chinese character would be one word there)."""
  from nmt_flax import tasks
  from nmt_flax.text.vocab import Vocabulary
  for source_lang, target_lang, units in (("en", "zh", ["i", "have", "a", "cat", "."]),
                                          ("zh", "en", list("我有一只猫。"))):
    config = nmt_config(source_lang=source_lang, target_lang=target_lang, buckets="10x10,24x20")
    task = tasks.get(config, {"src_vocab": Vocabulary.build([units]), "tgt_vocab": Vocabulary.build([["x"]])})
    translator = nmt_flax.Translator(task, None)
    for src_len, _ in config.bucket_shapes:
      assert len(task.source_tokens(translator.filler(src_len - 1))) == src_len - 1


def send_together(app, requests: list[dict]) -> list:
  async def send_all():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
      return await asyncio.gather(*(http.post("/translate", json=r) for r in requests))
  return asyncio.run(send_all())


def test_concurrent_requests_share_device_calls_and_get_their_own_answers(models):
  translator = models[0]
  calls = []
  nbest = translator.nbest

  class Counting:  # the translator, counting its device calls
    def __getattr__(self, name):
      return getattr(translator, name)

    def nbest(self, texts, prefixes=None, **options):
      calls.append(len(texts))
      return nbest(texts, prefixes, **options)
  counting = Counting()
  counting.__class__ = type("CountingTranslator", (Counting, nmt_flax.Translator), {})
  app = create_app([counting], batch_wait_ms=50)
  texts = [f"我有{n}隻貓。" for n in range(40)]
  responses = send_together(app, [{"texts": [t]} for t in texts])
  assert [r.status_code for r in responses] == [200] * 40
  assert [r.json()["translations"][0]["translation"] for r in responses] == \
      [t.text for t in translator.translate(texts)]
  assert sum(calls) == 40 and len(calls) < 40  # requests were batched together


def test_a_bad_text_fails_only_its_own_request_when_requests_share_a_device_call(models):
  app = create_app([models[0]], batch_wait_ms=200)
  ok, bad, other = send_together(app, [{"texts": ["我有一隻貓。"]}, {"texts": ["你好", " \t "]},
                                       {"texts": ["她有一隻貓。"]}])
  assert ok.status_code == other.status_code == 200
  assert bad.status_code == 422 and bad.json()["error"] == "texts #2: the text is empty"


def test_an_over_long_prefix_fails_only_its_own_request_when_requests_share_a_device_call(models):
  app = create_app([models[0]], batch_wait_ms=200)
  ok, bad = send_together(app, [{"texts": ["我有一隻貓。", "你好"], "prefixes": ["she", None]},
                                {"texts": ["你好", "她有一隻貓。"], "prefixes": [None, "a " * 40]}])
  assert ok.status_code == 200 and ok.json()["translations"][0]["translation"].startswith("she")
  assert bad.status_code == 422 and bad.json()["error"].startswith("prefixes #2: 40 tokens")


def test_no_alpha_value_compiles_a_new_program(models):
  translator = models[0]
  client = local_client(create_app([translator]))
  program = translator.task.decode_program
  for beam_size in (1, 2):  # the first alpha of a beam size may compile; no other does
    client.post("/translate", json={"texts": ["我有一隻貓。"], "beam_size": beam_size, "alpha": 0.6})
    compiled = program._cache_size()
    for alpha in (0.0, 0.13, 0.7, 1.234, 9.9):
      assert client.post("/translate", json={"texts": ["我有一隻貓。"], "beam_size": beam_size,
                                             "alpha": alpha}).status_code == 200
    assert program._cache_size() == compiled


def test_short_greedy_requests_never_wait_behind_beam_search_or_long_sentences(models):
  translator = models[0]
  release, started = threading.Event(), threading.Event()

  class Slow(nmt_flax.Translator):  # beam search that takes as long as the test says
    def nbest(self, texts, prefixes=None, **options):
      if options["beam_size"] > 1:
        started.set()
        assert release.wait(30)
      return translator.nbest(texts, prefixes, **options)
  slow = Slow(translator.task, translator.params)
  app = create_app([slow])

  async def scenario():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
      long = asyncio.ensure_future(http.post("/translate", json={"texts": ["我有一隻貓。"], "beam_size": 3}))
      await asyncio.get_running_loop().run_in_executor(None, started.wait, 30)
      short = await http.post("/translate", json={"texts": ["我有一隻貓。"]})  # answered meanwhile
      assert short.status_code == 200 and not long.done()
      release.set()
      return (await long).status_code
  assert asyncio.run(scenario()) == 200


def test_decoding_memory_stays_within_budget_at_any_beam_size(models):
  """XLA's planned memory for the longest sentence (10,000 characters) and a
  full request of long texts, at beam sizes up to the service's limit
  (before: 4.9 GiB at beam 5, 4.3 GiB for 64 x 2,000 characters at beam 10)."""
  translator = models[0]
  task = translator.task
  for options, src_len, sentences in [(DecodeOptions(), 10_000, 1), (DecodeOptions(beam_size=5), 10_000, 1),
                                      (DecodeOptions(beam_size=10), 10_000, 1),
                                      (DecodeOptions(beam_size=10), 2_000, 64),
                                      (DecodeOptions(sampling=True, n_best=10), 2_000, 64)]:
    max_len = translator.shapes.decode_length(src_len, options)
    rows = translator.shapes.rows_for(src_len, max_len, sentences, options.hypotheses)
    traced, static = task.decode_arguments(dataclasses.replace(options, max_len=max_len))
    prefix = (jax.ShapeDtypeStruct((rows, max_len), jnp.int32), jax.ShapeDtypeStruct((rows,), jnp.int32))
    positions = jax.ShapeDtypeStruct((rows,), jnp.int32)
    compiled = task.decode_program.lower(
        translator.params, jax.ShapeDtypeStruct((rows, src_len), jnp.int32), *traced, *prefix, positions,
        **static).compile()
    memory = compiled.memory_analysis()
    planned = memory.temp_size_in_bytes + memory.output_size_in_bytes
    assert planned < 1.1 * 2**30, (options, src_len, rows, max_len, planned / 2**30)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.xdist_group("transformer_workdir")  # with test_transformer's users of that workdir
@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (Debian's `chromium` package; "
                    ".ci/run installs it as root)")
def test_the_page_in_a_real_browser_shows_the_translation_and_one_heatmap_row_per_word(
    transformer_workdir, sentiment_workdir, tmp_path):
  """Served by a Transformer (the GRU models go through every endpoint above)
  with its raw parameters (it was trained with --ema: as eval.py --weights raw),
  the page asked for head 1 of layer 2."""
  port = free_port()
  server = subprocess.Popen([sys.executable, "-m", "nmt_flax.serve", "--workdir", str(transformer_workdir),
                             "--workdir", str(sentiment_workdir), "--weights", "raw", "--port", str(port),
                             "--max-texts", "1"], cwd=ROOT,  # one request shape: a short start-up
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  try:
    deadline = time.time() + 120
    while True:
      assert server.poll() is None and time.time() < deadline, server.stderr.read().decode()[-2000:]
      try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
        break
      except OSError:
        time.sleep(0.2)
    query = urllib.parse.urlencode({"text": "我有一隻貓。", "review": "A wonderful, moving film.",
                                    "view": "2.1"})
    url = f"http://127.0.0.1:{port}/?{query}"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120).stdout
  finally:
    server.kill()
  translator = nmt_flax.load(transformer_workdir, weights="raw")
  expected = translator.translate(["我有一隻貓。"])[0]
  translation = dom.split('<div id="translation"', 1)[1].split(">", 1)[1].split("</div>", 1)[0]
  assert translation == expected.text.replace("&", "&amp;")
  assert dom.count('class="attention-row"') == len(expected.target_labels)  # a row per word (and <end>)
  # the picker offers the mean and each of the 2 layers x 2 heads; the map shows layer 2, head 1
  assert dom.count("<option") == 5 and 'data-view="2.1"' in dom
  shown = [float(w) for w in re.findall(r'<td [^>]*title="([0-9.]+)"', dom.split('id="heatmap"', 1)[1])]
  np.testing.assert_allclose(shown, translator.attention_heads(expected)[1, 0].ravel(), atol=1.5e-3)
  assert "P(positive)" in dom and "<mark>" in dom
  # the Chinese example is set as the placeholder once the font has loaded (drawn before: boxes)
  assert 'placeholder="输入中文' in dom and '<span id="views">' in dom  # a Transformer's heads to pick
  assert 'data-translate="done"' in dom and 'data-classify="done"' in dom  # drawn, not half-way
  assert 'class="legend"' in dom and "rgb(" in dom  # a colour scale for the weights


def test_bad_service_flags_are_one_line_before_anything_loads(nmt_workdir, tmp_path, capsys):
  from nmt_flax import program, serve
  from tests.conftest import one_error_line
  with socket.socket() as busy:
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    for argv, fragment in [([], "required: --workdir"),
                           (["--workdir", tmp_path], "not an nmt-flax workdir"),
                           (["--workdir", nmt_workdir, "--workdir", nmt_workdir], "one workdir per task"),
                           (["--workdir", nmt_workdir, "--port", port], f"--port {port}: cannot listen"),
                           (["--workdir", nmt_workdir, "--max-texts", "0"], "--max-texts must be positive"),
                           (["--workdir", nmt_workdir, "--weights", "ema", "--port", free_port()],
                            "--weights 'ema': expected raw"),
                           (["--workdir", nmt_workdir, "--average-last", "5", "--port", free_port()],
                            "--average-last")]:
      assert program.run(serve.main, [str(a) for a in argv]) == 2
      one_error_line(capsys, fragment)
