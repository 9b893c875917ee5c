"""Generation speed and memory of t2t against transformers, on the same weights (issue 3's figures).

    .venv/bin/python benchmarks/generate.py                 # t5-small and gpt2 shapes, 3 rounds
    .venv/bin/python benchmarks/generate.py --rounds 5 --models gpt2 --plain   # + t2t without its kernels

Models: t2t.preset("t5-small") and t2t.preset("gpt2"), randomly initialised, saved once in Hugging Face's
format and loaded by both libraries, so both run identical weights. Workloads: greedy with batch 8,
64-token prompts and exactly 64 new tokens, and beam search with 4 beams, batch 1; end-of-sequence
stopping is off in both (t2t: eos_token_id=[]; transformers: generation_config.eos_token_id=None), so
both produce every token. 2 threads.

Speed: in this process, the two libraries alternate (A/B, then B/A) for --rounds rounds and the medians
are compared: new tokens per second and the ratio t2t / transformers; "same" says whether both produced
the same tokens. Memory: each library runs each workload in a fresh subprocess, after a short warm-up:
"alloc. peak" is the peak of the bytes PyTorch's allocator holds during `generate` above what it held
before (profiler allocation events: what the code asks for, whatever malloc does with it); "RSS peak" is
the resident set's high-water mark during `generate` above its size before (reset through
/proc/self/clear_refs; it depends on how much freed memory malloc kept from the warm-up). Also the
time per new token with the cache for 16, 64 and 256 new tokens (greedy, batch 8):
(time(n) - time(1)) / (n - 1), which leaves the prompt's forward pass out.
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

PROMPT = 64
THREADS = 2


@dataclass(frozen=True)
class Workload:
    label: str
    batch: int
    beams: int
    new_tokens: int


WORKLOADS = [Workload("greedy b8", 8, 1, 64), Workload("beam4 b1", 1, 4, 64)]


def save_model(name: str, directory: Path) -> None:
    torch.manual_seed(0)
    t2t.build_model(t2t.preset(name, dropout=0.0)).save_pretrained(directory)


def load(library: str, name: str, directory: Path):  # type: ignore[no-untyped-def]
    if library == "t2t":
        return t2t.from_pretrained(directory).eval()
    import transformers as tf

    cls = tf.T5ForConditionalGeneration if name.startswith("t5") else tf.GPT2LMHeadModel
    model = cls.from_pretrained(directory).eval()
    model.generation_config.eos_token_id = None  # every token is generated, as in t2t's run
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = model.config.eos_token_id
    return model


def prompts(vocab: int, batch: int) -> torch.Tensor:
    return torch.randint(3, vocab - 1, (batch, PROMPT), generator=torch.Generator().manual_seed(batch))


def generate(library: str, model, ids: torch.Tensor, beams: int, new_tokens: int) -> torch.Tensor:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        if library.startswith("t2t"):
            # "t2t-plain": without the few-row kernels (t2t/generation/kernels.py), to show their share
            os.environ[ENV_SWITCH] = "0" if library == "t2t-plain" else "1"
            return model.generate(ids, max_new_tokens=new_tokens, num_beams=beams, eos_token_id=[])
        mask = torch.ones_like(ids)
        return model.generate(
            ids, attention_mask=mask, max_new_tokens=new_tokens, num_beams=beams, do_sample=False
        )


def timed(library: str, model, ids: torch.Tensor, beams: int, new_tokens: int) -> tuple[float, torch.Tensor]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = generate(library, model, ids, beams, new_tokens)
    return time.perf_counter() - start, out


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


def memory_child(library: str, name: str, directory: str, batch: int, beams: int, new_tokens: int) -> None:
    import gc

    torch.set_num_threads(THREADS)
    model = load(library, name, Path(directory))
    ids = prompts(model.config.vocab_size, batch)
    generate(library, model, ids, beams, 2)  # warm up: kernels, thread pools, allocator
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current size
    before = _resident_mb("VmRSS")
    generate(library, model, ids, beams, new_tokens)
    rss = _resident_mb("VmHWM") - before
    allocated = _allocation_peak_mb(lambda: generate(library, model, ids, beams, new_tokens))
    print(json.dumps({"rss_mb": rss, "allocated_mb": allocated}))


def peak_increase(library: str, name: str, directory: Path, w: Workload) -> dict[str, float]:
    args = [library, name, str(directory), str(w.batch), str(w.beams), str(w.new_tokens)]
    done = subprocess.run(
        [sys.executable, __file__, "--memory-child", *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the report ---------------------------------------------------------------------------------------
def compare(name: str, directory: Path, rounds: int, plain: bool) -> None:
    models = {lib: load(lib, name, directory) for lib in ("transformers", "t2t")}
    if plain:
        models["t2t-plain"] = models["t2t"]
    vocab = models["t2t"].config.vocab_size
    for w in WORKLOADS:
        ids = prompts(vocab, w.batch)
        for lib, model in models.items():
            generate(lib, model, ids, w.beams, 2)  # warm up
        times: dict[str, list[float]] = {lib: [] for lib in models}
        outputs = {}
        for r in range(rounds):
            order = list(models) if r % 2 == 0 else list(reversed(models))
            for lib in order:
                seconds, outputs[lib] = timed(lib, models[lib], ids, w.beams, w.new_tokens)
                times[lib].append(seconds)
        tokens = w.batch * w.new_tokens
        rate = {lib: tokens / statistics.median(t) for lib, t in times.items()}
        same = outputs["t2t"].shape == outputs["transformers"].shape and torch.equal(
            outputs["t2t"], outputs["transformers"]
        )
        memory = {lib: peak_increase(lib, name, directory, w) for lib in ("transformers", "t2t")}
        print(
            f"{name:<9} {w.label:<10} {rate['transformers']:>10.1f} {rate['t2t']:>10.1f} "
            f"{rate['t2t'] / rate['transformers']:>6.2f}x {'yes' if same else 'NO':>5} "
            f"{memory['transformers']['allocated_mb']:>8.0f} {memory['t2t']['allocated_mb']:>8.0f} "
            f"{memory['transformers']['rss_mb']:>8.0f} {memory['t2t']['rss_mb']:>8.0f}",
            flush=True,
        )
        if plain:
            ratio = rate["t2t-plain"] / rate["transformers"]
            print(f"{'':<9} {w.label:<10} {'':>10} {rate['t2t-plain']:>10.1f} {ratio:>6.2f}x  (t2t-plain)")
    per_token(name, {lib: models[lib] for lib in ("transformers", "t2t")}, vocab)


def per_token(name: str, models: dict, vocab: int) -> None:  # type: ignore[type-arg]
    ids = prompts(vocab, 8)
    cells = []
    for lib, model in models.items():
        first, _ = timed(lib, model, ids, 1, 1)
        for n in (16, 64, 256):
            seconds, _ = timed(lib, model, ids, 1, n)
            cells.append(f"{lib} n={n}: {1000 * (seconds - first) / (n - 1):.1f}")
    print(f"{name:<9} ms per new token (greedy b8): " + ", ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="t5-small,gpt2", help="t2t preset names (t5-* or gpt2*)")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per library and workload")
    parser.add_argument(
        "--plain", action="store_true", help="also time t2t without its few-row kernels (T2T_FAST_DECODE=0)"
    )
    parser.add_argument("--memory-child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        library, name, directory, batch, beams, new = args.memory_child
        memory_child(library, name, directory, int(batch), int(beams), int(new))
        return
    torch.set_num_threads(THREADS)
    print(
        f"torch {torch.__version__}, {THREADS} threads, prompts of {PROMPT} tokens, medians of {args.rounds}"
    )
    print(
        f"{'':<21}{'new tokens per second':^29} {'':>5} {'alloc. peak MB':^17} {'RSS peak MB':^17}\n"
        f"{'model':<9} {'workload':<10} {'HF':>10} {'t2t':>10} {'t2t/HF':>7} {'same':>5} "
        f"{'HF':>8} {'t2t':>8} {'HF':>8} {'t2t':>8}"
    )
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            save_model(name, Path(tmp))
            compare(name, Path(tmp), args.rounds, args.plain)


if __name__ == "__main__":
    main()
