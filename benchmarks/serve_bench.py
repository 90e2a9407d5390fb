"""Load on the local service: requests/s and p50/p99 latency at several
concurrencies, with micro-batching (--batch-wait-ms 5) and without (0).
Prints JSON. Traffic goes to 127.0.0.1 only; every loop is bounded.

    python benchmarks/serve_bench.py --workdir runs/quick --requests 200
    python benchmarks/serve_bench.py --workdir runs/quick --expectations

Each setting starts `python -m nmt_flax.serve` on a free port, waits for
/health, sends `--requests` POST /translate requests (one sentence each,
greedy) from N concurrent clients, then stops the server.
"""
import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx

from nmt_flax.data.corpus import TRANSLATION, find_data_file, read_pairs

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start(workdir: str, wait_ms: float) -> tuple[subprocess.Popen, int, float]:
  port, started = free_port(), time.time()
  server = subprocess.Popen([sys.executable, "-m", "nmt_flax.serve", "--workdir", workdir,
                             "--port", str(port), "--batch-wait-ms", str(wait_ms)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  while time.time() - started < 300:
    try:
      urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
      return server, port, time.time() - started
    except OSError:
      time.sleep(0.2)
  server.kill()
  raise SystemExit("the server did not start within 300 s")


async def load(port: int, sentences: list[str], clients: int) -> dict:
  queue, latencies = list(sentences), []

  async def client(http):
    while queue:
      sentence = queue.pop()
      sent = time.perf_counter()
      response = await http.post("/translate", json={"texts": [sentence]})
      response.raise_for_status()
      latencies.append(time.perf_counter() - sent)
  async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
    started = time.perf_counter()
    await asyncio.gather(*(client(http) for _ in range(clients)))
    seconds = time.perf_counter() - started
  latencies.sort()
  return {"clients": clients, "requests": len(latencies), "requests_per_s": round(len(latencies) / seconds, 1),
          "p50_ms": round(1000 * statistics.median(latencies), 1),
          "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1)}


async def expectations(port: int, sentence: str) -> dict:
  """What one client sees after start-up (the README's "What a client can
  expect"): a short greedy request; the first and second beam-5 requests (the
  first compiles); a 2,000-character sentence at beam 5, and a short greedy
  request sent while it runs (the two lanes)."""
  async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300) as http:
    async def timed(body):
      sent = time.perf_counter()
      (await http.post("/translate", json=body)).raise_for_status()
      return round(time.perf_counter() - sent, 3)
    short = [await timed({"texts": [sentence]}) for _ in range(5)]
    result = {"short_greedy_s_median": statistics.median(short),
              "first_beam5_s": await timed({"texts": [sentence], "beam_size": 5}),
              "second_beam5_s": await timed({"texts": [sentence], "beam_size": 5})}
    long_sentence = sentence[:-1] * (2000 // len(sentence))  # no punctuation: one sentence
    long = asyncio.ensure_future(timed({"texts": [long_sentence], "beam_size": 5}))
    await asyncio.sleep(0.5)
    result["short_greedy_during_long_s"] = await timed({"texts": [sentence]})
    result["long_2000_chars_beam5_s"] = await long
  return result


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--requests", type=int, default=200)
  parser.add_argument("--clients", default="1,8,32")
  parser.add_argument("--data", default=None)
  parser.add_argument("--expectations", action="store_true",
                      help="measure what one client sees (start-up, lanes, first compiles) instead")
  args = parser.parse_args()
  if args.expectations:
    server, port, startup = start(args.workdir, 0.0)
    try:
      result = {"workdir": args.workdir, "startup_s": round(startup, 1),
                **asyncio.run(expectations(port, "我有一隻貓。"))}
    finally:
      server.kill()
    print(json.dumps(result, indent=2))
    return
  sentences = sorted({p.source for p in read_pairs(find_data_file(TRANSLATION, args.data))})
  result = {"workdir": args.workdir, "requests": args.requests}
  for wait_ms in (5.0, 0.0):
    server, port, startup = start(args.workdir, wait_ms)
    try:
      asyncio.run(load(port, sentences[:args.requests], 8))  # warm-up: every shape compiled once
      runs = [asyncio.run(load(port, sentences[:args.requests], int(c))) for c in args.clients.split(",")]
    finally:
      server.kill()
    result[f"batch_wait_ms_{wait_ms:g}"] = {"startup_s": round(startup, 1), "runs": runs}
    print(json.dumps(result[f"batch_wait_ms_{wait_ms:g}"]), file=sys.stderr)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
