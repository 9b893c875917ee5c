"""Load on `t2t serve`: throughput and latency with 1, 8 and 32 concurrent clients, and a soak run.

    .venv/bin/python benchmarks/serve.py --model runs/quickstart/model            # 20 s per level
    .venv/bin/python benchmarks/serve.py --model DIR --duration 10 --clients 1,8,32
    .venv/bin/python benchmarks/serve.py --model DIR --soak 180                  # + 3 minutes of soak
    .venv/bin/python benchmarks/serve.py --quick                                 # smoke test only

The server runs as `t2t serve` does, in its own process on 127.0.0.1 (a free port). The prompts are
fixed: the first 8 test examples of each of the quickstart's five tasks, with their prefixes, sent in
the same order. Each client sends one streamed request at a time (temperature 0, max_tokens 32 or
--max-tokens, with --ignore-eos every answer that long; stream_options.include_usage) for --duration seconds after a short warm-up; a level's figures are:
requests/s, generated tokens/s (the servers' usage counts), p50 / p99 latency (request sent to [DONE])
and time to first token (request sent to the first chunk), and the errors. "x one at a time"
is the level's requests/s over the 1-client level's: serving the same requests one at a time. The goal
(issue 19): at 32 clients at least 4x, no errors, p99 time to first token under 1 s.

--soak S: S seconds of 16 clients sending a mix of valid requests (streamed and not), invalid ones
(bad JSON, unknown fields, max_tokens 0, empty prompts, n out of range), and streams dropped after
their first chunk. Before and after, the server's resident memory (after a warm-up of the same mix) and,
after, /metrics' queue depth and answers in flight: memory should be back within 10% and nothing left.

--quick: a tiny random model (built here) and 2 s per level; it checks the script, its figures mean
nothing. --preset t5-small serves a random model of t5-small's shape (with --ignore-eos, answers of
exactly --max-tokens tokens). Otherwise --model defaults to runs/quickstart/model (`t2t quickstart`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TASKS = {  # folder of data/builtin/quickstart -> how its test example becomes a prompt
    "translate": lambda r: f"translate English to German: {r['inputs']}",
    "sentiment": lambda r: f"classify sentiment: {r['inputs']}",
    "question": lambda r: f"question: {r['question']} context: {r['context']}",
    "summarize": lambda r: f"summarize: {r['inputs']}",
    "reasoning": lambda r: f"reasoning: {r['inputs']}",
}
PER_TASK = 8
MAX_TOKENS = 32
WARMUP_S = 2.0


def prompts() -> list[str]:
    out = []
    for task, make in TASKS.items():
        lines = (ROOT / "data/builtin/quickstart" / task / "test.jsonl").read_text().splitlines()
        out += [make(json.loads(line)) for line in lines[:PER_TASK]]
    return out


@dataclass
class Level:
    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_tokens: list[float] = field(default_factory=list)
    tokens: int = 0
    errors: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _one(client: httpx.AsyncClient, prompt: str, level: Level | None, options: dict) -> None:
    body = {
        "prompt": prompt,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        **options,
    }
    started = time.perf_counter()
    first = None
    tokens = 0
    try:
        async with client.stream("POST", "/v1/completions", json=body) as response:
            if response.status_code != 200:
                await response.aread()
                raise RuntimeError(f"HTTP {response.status_code}")
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    raise RuntimeError(chunk["error"]["message"])
                if first is None and chunk["choices"]:  # the first token's chunk (its text may be empty)
                    first = time.perf_counter()
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
    except Exception:
        if level is not None:
            level.errors += 1
        return
    if level is not None:
        level.latencies.append(time.perf_counter() - started)
        level.first_tokens.append((first or time.perf_counter()) - started)
        level.tokens += tokens


async def run_level(url: str, clients: int, seconds: float, texts: list[str], options: dict) -> Level:
    level = Level(clients)
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        counter = iter(range(10**9))

        async def loop(until: float, record: Level | None) -> None:
            while time.perf_counter() < until:
                await _one(client, texts[next(counter) % len(texts)], record, options)

        await asyncio.gather(*(loop(time.perf_counter() + WARMUP_S, None) for _ in range(clients)))
        started = time.perf_counter()
        await asyncio.gather(*(loop(started + seconds, level) for _ in range(clients)))
        level.seconds = time.perf_counter() - started
    return level


# ---- soak ------------------------------------------------------------------------------------------------
BAD_BODIES = [
    b'{"prompt": "translate English to German: one",',
    b'{"prompt": "x", "unknown_field": 1}',
    b'{"prompt": "x", "max_tokens": 0}',
    b'{"prompt": ""}',
    b'{"prompt": "x", "n": 1000}',
    b'{"prompt": "x", "max_tokens": "ten"}',
    b"[1, 2, 3]",
]


async def _soak_client(
    url: str, until: float, texts: list[str], rng: random.Random, counts: dict[str, int]
) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        while time.perf_counter() < until:
            kind = rng.choice(["stream", "plain", "bad", "drop"])
            prompt = rng.choice(texts)
            try:
                if kind == "bad":
                    r = await client.post(
                        "/v1/completions",
                        content=rng.choice(BAD_BODIES),
                        headers={"content-type": "application/json"},
                    )
                    counts["bad_ok" if r.status_code == 400 else "bad_unexpected"] += 1
                elif kind == "plain":
                    r = await client.post(
                        "/v1/completions", json={"prompt": prompt, "max_tokens": MAX_TOKENS}
                    )
                    counts["ok" if r.status_code == 200 else "failed"] += 1
                else:
                    body = {"prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0.7, "stream": True}
                    async with client.stream("POST", "/v1/completions", json=body) as response:
                        async for line in response.aiter_lines():
                            if kind == "drop" and line.startswith("data: "):
                                break  # leave mid-stream: the connection is closed without reading on
                    counts["dropped" if kind == "drop" else "ok"] += 1
            except httpx.HTTPError:
                counts["transport_errors"] += 1


async def soak(url: str, seconds: float, texts: list[str], clients: int = 16) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(
        ["ok", "failed", "bad_ok", "bad_unexpected", "dropped", "transport_errors"], 0
    )
    until = time.perf_counter() + seconds
    await asyncio.gather(*(_soak_client(url, until, texts, random.Random(i), counts) for i in range(clients)))
    return counts


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


# ---- the server ------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, extra: list[str], log: Path) -> subprocess.Popen:
    """`t2t serve` in its own process; its log (a line per request) goes to a file, not to a pipe that
    nobody reads (a full pipe would block the server)."""
    command = [sys.executable, "-m", "t2t.cli.main", "serve", "--model", model, "--port", str(port), *extra]
    with open(log, "w") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not become ready in 120 s")


def random_model(directory: Path, preset: str) -> str:
    """A random model of a preset's shape (t5-tiny for --quick, t5-small with --preset t5-small) with a
    sentencepiece vocabulary trained on the benchmark's prompts; its answers are noise."""
    import t2t
    from t2t.tokenizer import Tokenizer

    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(prompts() * 20))
    tokenizer = Tokenizer.train([corpus], kind="sentencepiece", vocab_size=200)
    model = t2t.build_model(t2t.preset(preset, vocab_size=tokenizer.model_vocab_size, dropout=0.0))
    model.save_pretrained(directory / preset)
    tokenizer.save_pretrained(directory / preset)
    return str(directory / preset)


def report(levels: list[Level]) -> None:
    base = levels[0].requests / levels[0].seconds if levels and levels[0].clients == 1 else None
    print(
        "| clients | requests | requests/s | generated tokens/s | p50 latency | p99 latency "
        "| p50 first token | p99 first token | errors | x one at a time |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for lv in levels:
        rate = lv.requests / lv.seconds
        ratio = f"{rate / base:.2f}x" if base else "-"
        print(
            f"| {lv.clients} | {lv.requests} | {rate:.1f} | {lv.tokens / lv.seconds:.0f} "
            f"| {1000 * _pct(lv.latencies, 0.5):.0f} ms | {1000 * _pct(lv.latencies, 0.99):.0f} ms "
            f"| {1000 * _pct(lv.first_tokens, 0.5):.0f} ms | {1000 * _pct(lv.first_tokens, 0.99):.0f} ms "
            f"| {lv.errors} | {ratio} |"
        )
    top = levels[-1]
    if base and top.clients >= 32:
        met = (
            (top.requests / top.seconds) / base >= 4
            and top.errors == 0
            and _pct(top.first_tokens, 0.99) < 1.0
        )
        print(
            f"goal (32 clients: >= 4x one at a time, no errors, p99 first token < 1 s): {'met' if met else 'NOT met'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint directory (default: runs/quickstart/model)")
    parser.add_argument("--clients", default="1,8,32", help="concurrency levels, comma-separated (1,8,32)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per level (20)")
    parser.add_argument(
        "--soak", type=float, default=0.0, metavar="S", help="then S seconds of soak (0: none)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny random model, 2 s per level: a smoke test")
    parser.add_argument(
        "--preset",
        default=None,
        help="serve a random model of this shape instead (e.g. t5-small; use --ignore-eos)",
    )
    parser.add_argument(
        "--max-tokens", type=int, default=MAX_TOKENS, help=f"max_tokens of each request ({MAX_TOKENS})"
    )
    parser.add_argument(
        "--ignore-eos",
        action="store_true",
        help="every answer exactly --max-tokens long (for a random model)",
    )
    parser.add_argument("--server-args", default="", help="extra `t2t serve` flags, e.g. '--max-cohorts 2'")
    args = parser.parse_args()
    texts = prompts()
    with tempfile.TemporaryDirectory() as scratch:
        if args.quick:
            model, args.duration = random_model(Path(scratch), "t5-tiny"), 2.0
        elif args.preset:
            model = random_model(Path(scratch), args.preset)
        else:
            model = args.model or str(ROOT / "runs/quickstart/model")
            if not Path(model).is_dir():
                raise SystemExit(f"{model}: no such model; run `t2t quickstart` first or pass --model DIR")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(model, port, args.server_args.split(), Path(scratch) / "server.log")
        try:
            print(
                f"model {model}, {os.cpu_count()} CPUs, {args.duration:.0f} s per level, prompts: {len(texts)}"
            )
            options = {"max_tokens": args.max_tokens, "ignore_eos": args.ignore_eos}
            levels = [
                asyncio.run(run_level(url, int(c), args.duration, texts, options))
                for c in args.clients.split(",")
            ]
            report(levels)
            if args.soak > 0:
                asyncio.run(soak(url, min(10.0, args.soak), texts))  # warm-up: malloc's arenas settle
                before = rss_mb(server.pid)
                counts = asyncio.run(soak(url, args.soak, texts))
                time.sleep(1.0)
                after = rss_mb(server.pid)
                growth = 100 * (after - before) / before
                queue, active = metric(url, "t2t_queue_depth"), metric(url, "t2t_active_answers")
                print(f"soak {args.soak:.0f} s, 16 clients: {counts}")
                print(
                    f"server RSS {before:.1f} MB -> {after:.1f} MB ({growth:+.1f}%), queue depth {queue:.0f}, "
                    f"answers in flight {active:.0f}: {'ok' if growth <= 10 and queue == 0 and active == 0 else 'NOT ok'}"
                )
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
