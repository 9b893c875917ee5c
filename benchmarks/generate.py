"""Generation speed and memory of t2t against transformers, on the same weights (issue 3's figures).

    .venv/bin/python benchmarks/generate.py                 # t5-small and gpt2 shapes, 3 rounds
    .venv/bin/python benchmarks/generate.py --rounds 5 --models gpt2 --plain   # + t2t without its kernels
    .venv/bin/python benchmarks/generate.py --quick         # smoke test only: tiny models, short runs

Models: t2t.preset("t5-small") and t2t.preset("gpt2"), randomly initialised, saved once in Hugging Face's
format and loaded by both libraries, so both run identical weights. Workloads: greedy with batch 8,
64-token prompts and exactly 64 new tokens, and beam search with 4 beams, batch 1; end-of-sequence
stopping is off in both (t2t: eos_token_id=[]; transformers: generation_config.eos_token_id=None), so
both produce every token (checked: a run with another number of new tokens stops the benchmark). 2
threads.

Speed: in this process, the two libraries alternate (A/B, then B/A) for --rounds rounds and the medians
are compared: new tokens per second and the ratio t2t / transformers; "same" says whether both produced
the same tokens. Memory: each library runs each workload in a fresh subprocess, after a short warm-up:
"alloc. peak" is the peak of the bytes PyTorch's allocator holds during `generate` above what it held
before (profiler allocation events: what the code asks for, whatever malloc does with it); "RSS peak" is
the resident set's high-water mark during `generate` above its size before (reset through
/proc/self/clear_refs; it depends on how much freed memory malloc kept from the warm-up; differences
under 1 MB count as equal). The ratios are t2t / transformers. One verdict line per workload checks the issue's goal: at least 2x
transformers' tokens per second with no more peak memory (both peaks).

Also the time per new token with the cache for 16, 64 and 256 new tokens (greedy, batch 8), from the
medians over the rounds of interleaved runs: (median time(n) - median time(1)) / (n - 1), which leaves
the prompt's forward pass out; flat means the cache keeps each step's cost independent of the length.

--quick runs the t5-tiny and gpt2-tiny shapes with 1 round and short prompts and outputs: it checks that
the script works, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import t2t
from t2t.generation.kernels import ENV_SWITCH

THREADS = 2
SPEED_GOAL = 2.0  # t2t / transformers new tokens per second
MEMORY_GOAL = 1.0  # t2t / transformers peak memory: no more
RSS_RESOLUTION_MB = 1.0  # RSS moves in pages and malloc arenas: smaller differences count as equal


@dataclass(frozen=True)
class Workload:
    label: str
    batch: int
    beams: int
    new_tokens: int


@dataclass(frozen=True)
class Settings:
    prompt: int  # prompt tokens
    workloads: tuple[Workload, ...]
    per_token_lengths: tuple[int, ...]  # new tokens for the time-per-token line (greedy, batch 8)
    models: str
    rounds: int


FULL = Settings(
    prompt=64,
    workloads=(Workload("greedy b8", 8, 1, 64), Workload("beam4 b1", 1, 4, 64)),
    per_token_lengths=(16, 64, 256),
    models="t5-small,gpt2",
    rounds=3,
)
QUICK = Settings(
    prompt=8,
    workloads=(Workload("greedy b8", 8, 1, 8), Workload("beam4 b1", 1, 4, 8)),
    per_token_lengths=(4, 8, 16),
    models="t5-tiny,gpt2-tiny",
    rounds=1,
)


def save_model(name: str, directory: Path) -> None:
    torch.manual_seed(0)
    t2t.build_model(t2t.preset(name, dropout=0.0)).save_pretrained(directory)


def load(library: str, name: str, directory: Path):  # type: ignore[no-untyped-def]
    if library == "t2t":
        return t2t.from_pretrained(directory).eval()
    import transformers as tf

    tf.utils.logging.disable_progress_bar()
    cls = tf.T5ForConditionalGeneration if name.startswith("t5") else tf.GPT2LMHeadModel
    model = cls.from_pretrained(directory).eval()
    model.generation_config.eos_token_id = None  # every token is generated, as in t2t's run
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = model.config.eos_token_id
    return model


def prompts(vocab: int, batch: int, length: int) -> torch.Tensor:
    return torch.randint(3, vocab - 1, (batch, length), generator=torch.Generator().manual_seed(batch))


def generate(library: str, model, ids: torch.Tensor, beams: int, new_tokens: int) -> torch.Tensor:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        if library.startswith("t2t"):
            # "t2t-plain": without the few-row kernels (t2t/generation/kernels.py), to show their share
            os.environ[ENV_SWITCH] = "0" if library == "t2t-plain" else "1"
            out = model.generate(ids, max_new_tokens=new_tokens, num_beams=beams, eos_token_id=[])
        else:
            mask = torch.ones_like(ids)
            out = model.generate(
                ids, attention_mask=mask, max_new_tokens=new_tokens, num_beams=beams, do_sample=False
            )
    cfg = model.config  # transformers' or t2t's
    encoder_decoder = (
        cfg.is_encoder_decoder if hasattr(cfg, "is_encoder_decoder") else cfg.arch == "encoder-decoder"
    )
    made = out.shape[1] - (1 if encoder_decoder else ids.shape[1])
    if made != new_tokens or out.shape[0] != ids.shape[0]:
        raise RuntimeError(f"{library} made {tuple(out.shape)} for {new_tokens} new tokens: not comparable")
    return out


def timed(library: str, model, ids: torch.Tensor, beams: int, new_tokens: int) -> tuple[float, torch.Tensor]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = generate(library, model, ids, beams, new_tokens)
    return time.perf_counter() - start, out


def interleaved(libraries: list[str], rounds: int, run) -> dict[str, list]:  # type: ignore[no-untyped-def]
    """run(library) per round for every library, in A/B then B/A order, so drift hits all alike."""
    results: dict[str, list] = {lib: [] for lib in libraries}
    for r in range(rounds):
        for lib in libraries if r % 2 == 0 else list(reversed(libraries)):
            results[lib].append(run(lib))
    return results


# ---- memory, in a fresh process per library and workload ----------------------------------------------
def _resident_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _allocation_peak_mb(run) -> float:  # type: ignore[no-untyped-def]
    """Peak of the bytes PyTorch's CPU allocator holds during run() above what it held before, from the
    profiler's allocation events (independent of how malloc reuses or returns memory)."""
    from torch._C._profiler import _EventType

    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True
    ) as prof:
        run()
    events = []

    def walk(node) -> None:  # type: ignore[no-untyped-def]
        if node.tag == _EventType.Allocation:
            events.append((node.start_time_ns, node.extra_fields.alloc_size))
        for child in node.children:
            walk(child)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    live = peak = 0
    for _, size in sorted(events, key=lambda e: e[0]):
        live += size
        peak = max(peak, live)
    return peak / 2**20


def memory_child(library: str, name: str, directory: str, prompt: int, w: Workload) -> None:
    import gc

    torch.set_num_threads(THREADS)
    model = load(library, name, Path(directory))
    ids = prompts(model.config.vocab_size, w.batch, prompt)
    generate(library, model, ids, w.beams, 2)  # warm up: kernels, thread pools, allocator
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current size
    before = _resident_mb("VmRSS")
    generate(library, model, ids, w.beams, w.new_tokens)
    rss = _resident_mb("VmHWM") - before
    allocated = _allocation_peak_mb(lambda: generate(library, model, ids, w.beams, w.new_tokens))
    print(json.dumps({"rss_mb": rss, "allocated_mb": allocated}))


def peak_increase(library: str, name: str, directory: Path, prompt: int, w: Workload) -> dict[str, float]:
    args = [library, name, str(directory), str(prompt), str(w.batch), str(w.beams), str(w.new_tokens)]
    done = subprocess.run(
        [sys.executable, __file__, "--memory-child", *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the report ---------------------------------------------------------------------------------------
def ratio(ours: float, theirs: float) -> str:
    """ours / theirs, or n/a where transformers' figure is too small to divide by."""
    return f"{ours / theirs:.2f}x" if theirs >= 0.1 else "n/a"


def verdict(name: str, w: Workload, speed: float, memory: dict[str, dict[str, float]], quick: bool) -> str:
    """One line: each part of the goal, met or not, and the whole."""
    parts, met = [], True
    ok = speed >= SPEED_GOAL
    met &= ok
    parts.append(f"tokens/s {speed:.2f}x (goal >= {SPEED_GOAL:g}x: {'met' if ok else 'NOT met'})")
    for key, label in (("allocated_mb", "alloc. peak"), ("rss_mb", "RSS peak")):
        mine, theirs = memory["t2t"][key], memory["transformers"][key]
        ok = mine <= theirs * MEMORY_GOAL + (RSS_RESOLUTION_MB if key == "rss_mb" else 0.0)
        met &= ok
        parts.append(
            f"{label} {mine:.1f} vs {theirs:.1f} MB, {ratio(mine, theirs)} "
            f"(goal <= {MEMORY_GOAL:g}x: {'met' if ok else 'NOT met'})"
        )
    whole = "GOAL MET" if met else "GOAL NOT MET"
    note = "  (quick smoke run: not a measurement)" if quick else ""
    return f"verdict {name} {w.label}: " + "; ".join(parts) + f" -> {whole}{note}"


def compare(name: str, directory: Path, settings: Settings, plain: bool, quick: bool) -> list[str]:
    models = {lib: load(lib, name, directory) for lib in ("transformers", "t2t")}
    if plain:
        models["t2t-plain"] = models["t2t"]
    vocab = models["t2t"].config.vocab_size
    verdicts = []
    for w in settings.workloads:
        ids = prompts(vocab, w.batch, settings.prompt)
        for lib, model in models.items():
            generate(lib, model, ids, w.beams, 2)  # warm up

        def run(lib: str, ids: torch.Tensor = ids, w: Workload = w) -> tuple[float, torch.Tensor]:
            return timed(lib, models[lib], ids, w.beams, w.new_tokens)

        runs = interleaved(list(models), settings.rounds, run)
        tokens = w.batch * w.new_tokens
        rate = {lib: tokens / statistics.median(t for t, _ in r) for lib, r in runs.items()}
        ours, theirs = runs["t2t"][-1][1], runs["transformers"][-1][1]
        same = ours.shape == theirs.shape and torch.equal(ours, theirs)
        memory = {
            lib: peak_increase(lib, name, directory, settings.prompt, w) for lib in ("transformers", "t2t")
        }
        speed = rate["t2t"] / rate["transformers"]
        alloc = {lib: memory[lib]["allocated_mb"] for lib in memory}
        rss = {lib: memory[lib]["rss_mb"] for lib in memory}
        print(
            f"{name:<9} {w.label:<10} {rate['transformers']:>10.1f} {rate['t2t']:>10.1f} {speed:>6.2f}x "
            f"{'yes' if same else 'NO':>5} {alloc['transformers']:>8.1f} {alloc['t2t']:>8.1f} "
            f"{ratio(alloc['t2t'], alloc['transformers']):>7} {rss['transformers']:>8.1f} "
            f"{rss['t2t']:>8.1f} {ratio(rss['t2t'], rss['transformers']):>7}",
            flush=True,
        )
        if plain:
            plain_speed = rate["t2t-plain"] / rate["transformers"]
            print(
                f"{'':<9} {w.label:<10} {'':>10} {rate['t2t-plain']:>10.1f} {plain_speed:>6.2f}x  (t2t-plain)"
            )
        verdicts.append(verdict(name, w, speed, memory, quick))
    per_token(name, {lib: models[lib] for lib in ("transformers", "t2t")}, vocab, settings)
    return verdicts


def per_token(name: str, models: dict, vocab: int, settings: Settings) -> None:  # type: ignore[type-arg]
    """ms per new token at each length, from medians over interleaved rounds."""
    ids = prompts(vocab, 8, settings.prompt)
    lengths = (1, *settings.per_token_lengths)
    for lib, model in models.items():
        generate(lib, model, ids, 1, 2)  # warm up

    def run(lib: str) -> dict[int, float]:
        return {n: timed(lib, models[lib], ids, 1, n)[0] for n in lengths}

    runs = interleaved(list(models), settings.rounds, run)
    cells, flatness = [], []
    for lib, rounds in runs.items():
        median = {n: statistics.median(r[n] for r in rounds) for n in lengths}
        ms = {n: 1000 * (median[n] - median[1]) / (n - 1) for n in settings.per_token_lengths}
        cells.append(f"{lib} " + " ".join(f"n={n}: {ms[n]:.2f}" for n in settings.per_token_lengths))
        first, last = settings.per_token_lengths[0], settings.per_token_lengths[-1]
        flatness.append(f"{lib} {ms[last] / ms[first]:.2f}x" if ms[first] > 0 else f"{lib} n/a")
    print(
        f"{name:<9} ms per new token (greedy b8, medians of {settings.rounds}): " + "; ".join(cells),
        flush=True,
    )
    first, last = settings.per_token_lengths[0], settings.per_token_lengths[-1]
    print(
        f"{name:<9} ms per token at n={last} / at n={first} (1.00x: flat): " + ", ".join(flatness), flush=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=None, help="t2t preset names, t5-* or gpt2* (t5-small,gpt2)")
    parser.add_argument("--rounds", type=int, default=None, help="timed runs per library and workload (3)")
    parser.add_argument(
        "--plain", action="store_true", help="also time t2t without its few-row kernels (T2T_FAST_DECODE=0)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test only: tiny models, 1 round, short prompts and outputs",
    )
    parser.add_argument("--memory-child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        library, name, directory, prompt, batch, beams, new = args.memory_child
        workload = Workload("", int(batch), int(beams), int(new))
        memory_child(library, name, directory, int(prompt), workload)
        return
    base = QUICK if args.quick else FULL
    settings = Settings(
        base.prompt,
        base.workloads,
        base.per_token_lengths,
        args.models or base.models,
        args.rounds or base.rounds,
    )
    torch.set_num_threads(THREADS)
    if args.quick:
        print("QUICK SMOKE RUN: tiny models and short runs; the figures below mean nothing")
    new = ", ".join(f"{w.label}: {w.new_tokens}" for w in settings.workloads)
    print(
        f"torch {torch.__version__}, {THREADS} threads, prompts of {settings.prompt} tokens, new tokens "
        f"({new}), eos off in both, medians of {settings.rounds} interleaved rounds"
    )
    print(
        f"{'':<21}{'new tokens per second':^29} {'':>5} {'alloc. peak MB':^25} {'RSS peak MB':^25}\n"
        f"{'model':<9} {'workload':<10} {'HF':>10} {'t2t':>10} {'t2t/HF':>7} {'same':>5} "
        f"{'HF':>8} {'t2t':>8} {'t2t/HF':>7} {'HF':>8} {'t2t':>8} {'t2t/HF':>7}"
    )
    verdicts = []
    for name in settings.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            save_model(name, Path(tmp))
            verdicts += compare(name, Path(tmp), settings, args.plain, args.quick)
    print()
    for line in verdicts:
        print(line)


if __name__ == "__main__":
    main()
