"""The local service: every endpoint and every error through FastAPI's test
client, micro-batching under concurrent requests, and the page in a real browser."""
import asyncio
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

import nmt_flax
from nmt_flax.serve import create_app
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def models(nmt_workdir, sentiment_workdir):
  return nmt_flax.load(nmt_workdir), nmt_flax.load(sentiment_workdir)


@pytest.fixture(scope="module")
def client(models):
  return TestClient(create_app(list(models), max_texts=8, max_chars=50))


def test_health_translate_and_classify_answer_what_the_api_answers(client, models):
  translator, classifier = models
  assert client.get("/health").json()["status"] == "ok"
  assert "<canvas" not in client.get("/").text and 'id="heatmap"' in client.get("/").text
  texts = ["我有一隻貓。", "你今晚會去派對嗎?"]
  body = client.post("/translate", json={"texts": texts, "beam_size": 2, "n_best": 2}).json()
  expected = translator.nbest(texts, beam_size=2, n_best=2)
  for got, hyps in zip(body["translations"], expected):
    assert got["translation"] == hyps[0].text and len(got["nbest"]) == 2
    assert np.asarray(got["attention"]).shape == (len(got["target_tokens"]), len(got["source_tokens"]))
    assert got["source_tokens"][-1] == got["target_tokens"][-1] == "<end>"
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
    ("/translate", {"texts": [" \t "]}, 422, "texts #1: the sentence is empty"),
    ("/translate", {"texts": [3]}, 422, "texts.0"),
    ("/translate", {"texts": ["我"], "beam_size": 0}, 422, "beam_size"),
    ("/translate", {"texts": ["我"], "beam_size": 2, "n_best": 3}, 422, "n_best"),
    ("/translate", {"texts": ["我"], "unknown": 1}, 422, "unknown"),
    ("/classify", {"texts": ["!!! 42"]}, 422, "texts #1: no words left"),
    ("/classify", {}, 422, "texts"),
    ("/nowhere", {"texts": ["x"]}, 404, ""),
])
def test_every_bad_request_gets_a_4xx_with_a_json_error_and_the_service_keeps_serving(
    client, path, body, status, fragment):
  response = (client.post(path, content=body, headers={"Content-Type": "application/json"})
              if isinstance(body, bytes) else client.post(path, json=body))
  assert response.status_code == status, response.text
  if path != "/nowhere":
    assert fragment in response.json()["error"] and "Traceback" not in response.text
  assert client.post("/translate", json={"texts": ["我有一隻貓。"]}).status_code == 200
  assert client.get("/translate").status_code == 405


def test_a_service_without_a_model_for_the_task_says_so(models):
  client = TestClient(create_app([models[0]]))
  response = client.post("/classify", json={"texts": ["good"]})
  assert response.status_code == 404 and "no sentiment model" in response.json()["error"]


def test_concurrent_requests_share_device_calls_and_get_their_own_answers(models):
  translator = models[0]
  calls = []
  nbest = translator.nbest

  class Counting:  # the translator, counting its device calls
    def __getattr__(self, name):
      return getattr(translator, name)

    def nbest(self, texts, **options):
      calls.append(len(texts))
      return nbest(texts, **options)
  counting = Counting()
  counting.__class__ = type("CountingTranslator", (Counting, nmt_flax.Translator), {})
  app = create_app([counting], batch_wait_ms=50)
  texts = [f"我有{n}隻貓。" for n in range(40)]

  async def send_all():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
      return await asyncio.gather(*(http.post("/translate", json={"texts": [t]}) for t in texts))
  responses = asyncio.run(send_all())
  assert [r.status_code for r in responses] == [200] * 40
  assert [r.json()["translations"][0]["translation"] for r in responses] == \
      [t.text for t in translator.translate(texts)]
  assert sum(calls) == 40 and len(calls) < 40  # requests were batched together


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (Debian's `chromium` package; "
                    ".ci/run installs it as root)")
def test_the_page_in_a_real_browser_shows_the_translation_and_one_heatmap_row_per_word(
    nmt_workdir, sentiment_workdir, models, tmp_path):
  port = free_port()
  server = subprocess.Popen([sys.executable, "-m", "nmt_flax.serve", "--workdir", str(nmt_workdir),
                             "--workdir", str(sentiment_workdir), "--port", str(port),
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
    query = urllib.parse.urlencode({"text": "我有一隻貓。", "review": "A wonderful, moving film."})
    url = f"http://127.0.0.1:{port}/?{query}"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120).stdout
  finally:
    server.kill()
  expected = models[0].translate(["我有一隻貓。"])[0]
  translation = dom.split('<div id="translation"', 1)[1].split(">", 1)[1].split("</div>", 1)[0]
  assert translation == expected.text.replace("&", "&amp;")
  assert dom.count('class="attention-row"') == len(expected.tokens) + 1  # one row per word and <end>
  assert "P(positive)" in dom and "<mark>" in dom


def test_bad_service_flags_are_one_line_before_anything_loads(nmt_workdir, tmp_path, capsys):
  from nmt_flax import cli, serve
  from tests.conftest import one_error_line
  with socket.socket() as busy:
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    for argv, fragment in [([], "required: --workdir"),
                           (["--workdir", tmp_path], "not an nmt-flax workdir"),
                           (["--workdir", nmt_workdir, "--workdir", nmt_workdir], "one workdir per task"),
                           (["--workdir", nmt_workdir, "--port", port], f"--port {port}: cannot listen"),
                           (["--workdir", nmt_workdir, "--max-texts", "0"], "--max-texts must be positive")]:
      assert cli.run(serve.main, [str(a) for a in argv]) == 2
      one_error_line(capsys, fragment)
