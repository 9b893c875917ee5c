"""Generation speed, memory and model size of t2t in fp32, bf16 and int8 against transformers and
CTranslate2, on the same weights (issues 3 and 18).

    .venv/bin/python benchmarks/generate.py                 # t5-small and gpt2 shapes, 3 rounds
    .venv/bin/python benchmarks/generate.py --models t5-small --rounds 5
    .venv/bin/python benchmarks/generate.py --engines t2t,t2t-int8,ct2-int8 --models gpt2
    .venv/bin/python benchmarks/generate.py --plain         # + t2t without its few-row kernels
    .venv/bin/python benchmarks/generate.py --quick         # smoke test only: tiny models, short runs

Models: t2t.preset("t5-small") and t2t.preset("gpt2"), randomly initialised, saved once in Hugging
Face's format; every engine starts from those weights. Engines (--engines, comma-separated):

    transformers   transformers, float32
    t2t            t2t, float32 (from_pretrained of the HF directory)
    t2t-bf16       t2t, bfloat16 weights and computation (saved by t2t in bf16, loaded from there)
    t2t-int8       t2t, int8-dynamic (quantised, saved by t2t, loaded from there without re-quantising)
    t2t-int8wo     t2t, int8-weight-only (likewise)
    ct2            CTranslate2, float32 (its TransformersConverter on the HF directory)
    ct2-int8       CTranslate2, int8 (converted with quantization="int8", compute_type="int8")

CTranslate2 (`pip install ctranslate2`) is an optional peer: without it its engines are skipped with a
note; it has no bfloat16 on CPUs (4.8.5 offers int8, int8_float32, float32 there). T5 runs as its
Translator, GPT-2 as its Generator. Its converter wants a tokenizer; the benchmark gives it a vocabulary
of placeholder tokens ("<t17>" is id 17) so that ids map one to one.

Workloads: greedy with batch 8, 64-token prompts and exactly 64 new tokens, and beam search with 4
beams, batch 1; end-of-sequence stopping is off everywhere (t2t: eos_token_id=[]; transformers:
generation_config.eos_token_id=None; CTranslate2: min length = max length), so every engine produces
every token (checked: another number of new tokens stops the benchmark). 2 threads everywhere
(torch.set_num_threads, CTranslate2's intra_threads).

Speed: in this process the engines take turns (A B C, then C B A, ...) for --rounds rounds and the
medians are compared: new tokens per second, the ratio to t2t fp32, and "agree": the share of new
tokens equal to t2t fp32's (1.000 for transformers means identical greedy / beam output). Memory: each
engine runs each workload in a fresh subprocess after a short warm-up: "RSS model" is the resident set
added by loading the model; "RSS peak" the high-water mark during `generate` above the resident size
before loading (model + generation: what the process needs beyond its libraries; reset through
/proc/self/clear_refs); "alloc" the peak of PyTorch's allocator during `generate` above what it held
before (profiler events; torch engines only); "RSS gen" the high-water mark during `generate` above the
resident size just before it (what issue 3's table compared). "disk" is the size of the weight files.

Verdict lines check issue 18's goals on each workload: t2t int8 >= 1.3x CTranslate2 int8 tokens/s on
greedy and >= 1.0x on beam search; t2t bf16 >= 1.5x t2t fp32 on greedy; t2t's RSS peak no more than
CTranslate2's at the same precision; and issue 3's: t2t >= 2x transformers' tokens/s at no more memory.

Then the time per new token with the cache for 16, 64 and 256 new tokens (greedy, batch 8), from the
medians over the rounds of interleaved runs: (median time(n) - median time(1)) / (n - 1), which leaves
the prompt's pass out, next to what reading the cache costs: a memory-bound step reads the decoder's
weights and the cached keys and values, so its time can grow at most by (weights + cache at 256) /
(weights + cache at 16); growth beyond that bound would be overhead to remove.

--quick runs the t5-tiny and gpt2-tiny shapes with 1 round and short prompts and outputs: it checks that
the script works, its figures mean nothing.

Kernels (`--kernels`): the few-row products of a decoding step (t5-small's and gpt2's decoder and
vocabulary shapes, 1 / 4 / 8 rows), each over enough copies of the weight to exceed 120 MB so that they
stream from memory as in a decode loop (benchmarks/linear_kernels.py does the same for fp32), in
billions of weights per second: t2t's fp32 choice, bf16 F.linear, bf16 packed (t2t's), fbgemm int8
dynamic (t2t's int8-dynamic), `_weight_int8pack_mm` (t2t's int8-weight-only) and, when torchao is
installed, torchao's Int8WeightOnlyConfig and Int8DynamicActivationInt8WeightConfig.

Quality (`--quality DIR`, a trained quickstart model, e.g. `t2t quickstart --out runs/quickstart` then
DIR=runs/quickstart/model): every quickstart task's test split is answered greedily (batch 64, 24 new
tokens, as the quickstart evaluates) by the model in fp32, bf16, int8-dynamic and int8-weight-only;
printed per task and precision: each metric and its difference from fp32 (goal: within 1 point), the
share of answers identical to fp32's and the token agreement with fp32 (answers re-tokenised, position
by position over the longer of the two).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import t2t
from t2t.generation.kernels import ENV_SWITCH

THREADS = 2
SPEED_GOAL = 2.0  # t2t / transformers new tokens per second (issue 3)
MEMORY_GOAL = 1.0  # t2t / peer peak memory: no more
INT8_GOALS = {1: 1.3, 4: 1.0}  # t2t int8 / CTranslate2 int8 tokens/s, by beams (issue 18)
BF16_GOAL = 1.5  # t2t bf16 / t2t fp32 tokens/s, greedy
RSS_RESOLUTION_MB = 1.0  # RSS moves in pages and malloc arenas: smaller differences count as equal


@dataclass(frozen=True)
class EngineSpec:
    library: str  # "t2t", "transformers", "ctranslate2"
    precision: str  # "float32", "bfloat16", "int8-dynamic", "int8-weight-only", "int8"


ENGINES = {
    "transformers": EngineSpec("transformers", "float32"),
    "t2t": EngineSpec("t2t", "float32"),
    "t2t-plain": EngineSpec("t2t", "float32"),  # without the few-row kernels (T2T_FAST_DECODE=0)
    "t2t-bf16": EngineSpec("t2t", "bfloat16"),
    "t2t-int8": EngineSpec("t2t", "int8-dynamic"),
    "t2t-int8wo": EngineSpec("t2t", "int8-weight-only"),
    "ct2": EngineSpec("ctranslate2", "float32"),
    "ct2-int8": EngineSpec("ctranslate2", "int8"),
}
DEFAULT_ENGINES = "transformers,t2t,t2t-bf16,t2t-int8,t2t-int8wo,ct2,ct2-int8"
PER_TOKEN_ENGINES = ("transformers", "t2t", "t2t-int8", "ct2-int8")


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


def ctranslate2_available() -> bool:
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return False
    return True


# ---- the weights each engine reads ----------------------------------------------------------------------
def _encoder_decoder(name: str) -> bool:
    return name.startswith("t5")


def _vocabulary(directory: Path) -> tuple[int, dict[str, int]]:
    config = json.loads((directory / "config.json").read_text())
    ids = {k: config.get(k) for k in ("pad_token_id", "eos_token_id", "bos_token_id")}
    return config["vocab_size"], {k: v for k, v in ids.items() if v is not None}


class _Placeholders:
    """What CTranslate2's converter reads of a tokenizer: token i is "<ti>"; special tokens by id."""

    def __init__(self, size: int, ids: dict[str, int], unk: int) -> None:
        self.tokens = [f"<t{i}>" for i in range(size)]
        eos = ids.get("eos_token_id", 1)
        self.eos_token = self.tokens[eos]
        self.pad_token = self.tokens[ids.get("pad_token_id", eos)]
        self.bos_token = self.tokens[ids.get("bos_token_id", eos)]
        self.unk_token = self.tokens[unk]
        self.special_tokens_map: dict[str, Any] = {}

    def get_vocab(self) -> dict[str, int]:
        return {token: i for i, token in enumerate(self.tokens)}

    def convert_ids_to_tokens(self, index: int) -> str:
        return self.tokens[index]


def convert_ctranslate2(hf_dir: Path, out: Path, quantization: str | None) -> Path:
    import ctranslate2.converters as converters

    size, ids = _vocabulary(hf_dir)
    unk = 2 if "pad_token_id" in ids and ids.get("pad_token_id") == 0 else ids.get("eos_token_id", 0)

    class Converter(converters.TransformersConverter):  # type: ignore[misc]
        def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):  # type: ignore[no-untyped-def]
            return _Placeholders(size, ids, unk)

    Converter(str(hf_dir)).convert(str(out), quantization=quantization, force=True)
    return out


def prepare(name: str, root: Path, engines: list[str]) -> dict[str, Path]:
    """Each engine's directory: the HF save, t2t's bf16 and int8 saves, CTranslate2's conversions."""
    hf = root / "hf"
    torch.manual_seed(0)
    t2t.build_model(t2t.preset(name, dropout=0.0)).save_pretrained(hf)
    dirs = {"transformers": hf, "t2t": hf, "t2t-plain": hf}
    for engine in engines:
        spec = ENGINES[engine]
        if engine in dirs:
            continue
        out = root / engine
        if spec.library == "t2t":
            if spec.precision == "bfloat16":
                t2t.from_pretrained(hf, dtype="bfloat16").save_pretrained(out, format="t2t")
            else:
                t2t.from_pretrained(hf, quantize=spec.precision).save_pretrained(out)
        else:
            convert_ctranslate2(hf, out, None if spec.precision == "float32" else spec.precision)
        dirs[engine] = out
    return dirs


def disk_mb(directory: Path) -> float:
    weights = [p for p in directory.iterdir() if p.suffix in (".safetensors", ".bin")]
    return sum(p.stat().st_size for p in weights) / 1e6


# ---- engines ----------------------------------------------------------------------------------------------
class Engine:
    """A loaded model of one engine: `run(ids, beams, new_tokens)` -> the new tokens [B, new_tokens]."""

    def __init__(self, engine: str, name: str, directory: Path) -> None:
        self.engine, self.name = engine, name
        self.spec = ENGINES[engine]
        self.encoder_decoder = _encoder_decoder(name)
        if self.spec.library == "t2t":
            dtype = "bfloat16" if self.spec.precision == "bfloat16" else None
            self.model: Any = t2t.from_pretrained(directory, dtype=dtype).eval()
        elif self.spec.library == "transformers":
            import transformers as tf

            tf.utils.logging.disable_progress_bar()
            cls = tf.T5ForConditionalGeneration if self.encoder_decoder else tf.GPT2LMHeadModel
            self.model = cls.from_pretrained(directory).eval()
            self.model.generation_config.eos_token_id = None  # every token is generated, as in t2t
            if self.model.generation_config.pad_token_id is None:
                self.model.generation_config.pad_token_id = self.model.config.eos_token_id
        else:
            import ctranslate2

            compute = "int8" if self.spec.precision == "int8" else "float32"
            kind = ctranslate2.Translator if self.encoder_decoder else ctranslate2.Generator
            self.model = kind(
                str(directory), device="cpu", compute_type=compute, intra_threads=THREADS, inter_threads=1
            )

    def run(self, ids: torch.Tensor, beams: int, new_tokens: int) -> torch.Tensor:
        library = self.spec.library
        if library == "t2t":
            os.environ[ENV_SWITCH] = "0" if self.engine == "t2t-plain" else "1"
            with torch.no_grad():
                out = self.model.generate(ids, max_new_tokens=new_tokens, num_beams=beams, eos_token_id=[])
            new = out[:, 1:] if self.encoder_decoder else out[:, ids.shape[1] :]
        elif library == "transformers":
            with torch.no_grad():
                out = self.model.generate(
                    ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=new_tokens,
                    num_beams=beams,
                    do_sample=False,
                )
            new = out[:, 1:] if self.encoder_decoder else out[:, ids.shape[1] :]
        else:
            prompts = [[f"<t{i}>" for i in row] for row in ids.tolist()]
            if self.encoder_decoder:
                results = self.model.translate_batch(
                    prompts, beam_size=beams, max_decoding_length=new_tokens, min_decoding_length=new_tokens
                )
                rows = [r.hypotheses[0] for r in results]
            else:
                results = self.model.generate_batch(
                    prompts,
                    beam_size=beams,
                    max_length=new_tokens,
                    min_length=new_tokens,
                    include_prompt_in_result=False,
                )
                rows = [r.sequences[0] for r in results]
            new = torch.tensor([[int(t[2:-1]) for t in row] for row in rows])
        if new.shape != (ids.shape[0], new_tokens):
            raise RuntimeError(
                f"{self.engine} made {tuple(new.shape)} for {new_tokens} new tokens: not comparable"
            )
        return new


def prompts(vocab: int, batch: int, length: int) -> torch.Tensor:
    return torch.randint(3, vocab - 1, (batch, length), generator=torch.Generator().manual_seed(batch))


def timed(engine: Engine, ids: torch.Tensor, beams: int, new_tokens: int) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = engine.run(ids, beams, new_tokens)
    return time.perf_counter() - start, out


def interleaved(names: list[str], rounds: int, run) -> dict[str, list]:  # type: ignore[no-untyped-def]
    """run(name) per round for every engine, forwards then backwards, so drift hits all alike."""
    results: dict[str, list] = {n: [] for n in names}
    for r in range(rounds):
        for n in names if r % 2 == 0 else list(reversed(names)):
            results[n].append(run(n))
    return results


# ---- memory, in a fresh process per engine and workload ---------------------------------------------------
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


def memory_child(engine_name: str, name: str, directory: str, prompt: int, w: Workload) -> None:
    torch.set_num_threads(THREADS)
    spec = ENGINES[engine_name]
    if spec.library == "transformers":
        import transformers  # noqa: F401
    elif spec.library == "ctranslate2":
        import ctranslate2  # noqa: F401
    gc.collect()
    base = _resident_mb("VmRSS")
    engine = Engine(engine_name, name, Path(directory))
    loaded = _resident_mb("VmRSS")
    ids = prompts(t2t.preset(name).vocab_size, w.batch, prompt)
    engine.run(ids, w.beams, 2)  # warm up: kernels, thread pools, allocator
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current size
    before = _resident_mb("VmRSS")
    engine.run(ids, w.beams, w.new_tokens)
    hwm = _resident_mb("VmHWM")
    allocated = None
    if spec.library != "ctranslate2":
        allocated = _allocation_peak_mb(lambda: engine.run(ids, w.beams, w.new_tokens))
    result = {
        "rss_model_mb": loaded - base,
        "rss_peak_mb": hwm - base,
        "rss_generate_mb": hwm - before,
        "allocated_mb": allocated,
    }
    print(json.dumps(result))


def peak_memory(engine: str, name: str, directory: Path, prompt: int, w: Workload) -> dict[str, Any]:
    args = [engine, name, str(directory), str(prompt), str(w.batch), str(w.beams), str(w.new_tokens)]
    done = subprocess.run(
        [sys.executable, __file__, "--memory-child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory run of {engine} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the report -------------------------------------------------------------------------------------------
def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _goal(label: str, value: float, goal: float, at_least: bool = True) -> tuple[str, bool]:
    ok = value >= goal if at_least else value <= goal
    sign = ">=" if at_least else "<="
    return f"{label} {value:.2f}x (goal {sign} {goal:g}x: {'met' if ok else 'NOT met'})", ok


def verdicts(
    name: str, w: Workload, rate: dict[str, float], memory: dict[str, dict], quick: bool
) -> list[str]:
    """Lines for each goal whose engines ran."""
    lines: list[tuple[str, bool]] = []

    def rss(engine: str) -> float:
        return float(memory[engine]["rss_peak_mb"])

    if "t2t" in rate and "transformers" in rate:
        lines.append(_goal("t2t / transformers tokens/s", rate["t2t"] / rate["transformers"], SPEED_GOAL))
        mine, theirs = rss("t2t"), rss("transformers")
        ok = mine <= theirs * MEMORY_GOAL + RSS_RESOLUTION_MB
        lines.append((f"t2t / transformers RSS peak {mine:.1f} vs {theirs:.1f} MB", ok))
    if "t2t-int8" in rate and "ct2-int8" in rate:
        goal = INT8_GOALS.get(w.beams, 1.0)
        lines.append(_goal("t2t int8 / CTranslate2 int8 tokens/s", rate["t2t-int8"] / rate["ct2-int8"], goal))
    if "t2t-bf16" in rate and "t2t" in rate and w.beams == 1:
        lines.append(_goal("t2t bf16 / t2t fp32 tokens/s", rate["t2t-bf16"] / rate["t2t"], BF16_GOAL))
    for ours, peer in (("t2t", "ct2"), ("t2t-int8", "ct2-int8")):
        if ours in memory and peer in memory:
            mine, theirs = rss(ours), rss(peer)
            ok = mine <= theirs * MEMORY_GOAL + RSS_RESOLUTION_MB
            lines.append(
                (f"{ours} / {peer} RSS peak {mine:.1f} vs {theirs:.1f} MB ({mine / theirs:.2f}x)", ok)
            )
    note = "  (quick smoke run: not a measurement)" if quick else ""
    out = []
    for text, ok in lines:
        out.append(f"verdict {name} {w.label}: {text} -> {'met' if ok else 'NOT met'}{note}")
    return out


def compare(
    name: str, dirs: dict[str, Path], engines: list[str], settings: Settings, quick: bool
) -> list[str]:
    loaded = {e: Engine(e, name, dirs[e]) for e in engines}
    vocab = t2t.preset(name).vocab_size
    lines = []
    for w in settings.workloads:
        ids = prompts(vocab, w.batch, settings.prompt)
        for engine in loaded.values():
            engine.run(ids, w.beams, 2)  # warm up

        def run(e: str, ids: torch.Tensor = ids, w: Workload = w) -> tuple[float, torch.Tensor]:
            return timed(loaded[e], ids, w.beams, w.new_tokens)

        runs = interleaved(engines, settings.rounds, run)
        tokens = w.batch * w.new_tokens
        rate = {e: tokens / statistics.median(t for t, _ in r) for e, r in runs.items()}
        memory = {e: peak_memory(e, name, dirs[e], settings.prompt, w) for e in engines}
        reference = runs["t2t"][-1][1] if "t2t" in runs else None
        for e in engines:
            out = runs[e][-1][1]
            agree = float((out == reference).float().mean()) if reference is not None else float("nan")
            speed = rate[e] / rate["t2t"] if "t2t" in rate else float("nan")
            m = memory[e]
            print(
                f"{name:<9} {w.label:<10} {e:<12} {rate[e]:>9.1f} {speed:>7.2f}x {agree:>6.3f} "
                f"{_mb(m['allocated_mb']):>8} {_mb(m['rss_generate_mb']):>8} {_mb(m['rss_model_mb']):>9} "
                f"{_mb(m['rss_peak_mb']):>9} "
                f"{disk_mb(dirs[e]):>8.1f}",
                flush=True,
            )
        lines += verdicts(name, w, rate, memory, quick)
    per_token(name, {e: loaded[e] for e in PER_TOKEN_ENGINES if e in loaded}, vocab, settings)
    return lines


def cache_bytes_per_step(name: str, batch: int, prompt: int, new: int) -> tuple[float, float]:
    """Bytes a greedy step reads at `new` tokens generated: the decoder's weights (fp32) and the cached
    keys and values (self-attention over the tokens so far; T5's cross-attention over the prompt)."""
    cfg = t2t.preset(name)
    inner = cfg.n_heads * cfg.dim_head
    layers = cfg.n_decoder_layers
    encoder_decoder = cfg.arch == "encoder-decoder"
    history = new if encoder_decoder else prompt + new
    kv = 2 * batch * inner * 4 * layers * (history + (prompt if encoder_decoder else 0))
    # self-attention's q, k, v, out; cross-attention's q and out (its keys and values are cached)
    attention = (4 + (2 if encoder_decoder else 0)) * cfg.d_model * inner
    ffn = (3 if cfg.gated_ffn else 2) * cfg.d_model * cfg.d_ff
    weights = 4 * (layers * (attention + ffn) + cfg.vocab_size * cfg.d_model)
    return weights, kv


def per_token(name: str, engines: dict[str, Engine], vocab: int, settings: Settings) -> None:
    """ms per new token at each length, from medians over interleaved rounds, and the cache's share."""
    if not engines:
        return
    ids = prompts(vocab, 8, settings.prompt)
    lengths = (1, *settings.per_token_lengths)
    for engine in engines.values():
        engine.run(ids, 1, 2)  # warm up

    def run(e: str) -> dict[int, float]:
        return {n: timed(engines[e], ids, 1, n)[0] for n in lengths}

    runs = interleaved(list(engines), settings.rounds, run)
    cells, flatness = [], []
    first, last = settings.per_token_lengths[0], settings.per_token_lengths[-1]
    for e, rounds in runs.items():
        median = {n: statistics.median(r[n] for r in rounds) for n in lengths}
        ms = {n: 1000 * (median[n] - median[1]) / (n - 1) for n in settings.per_token_lengths}
        cells.append(f"{e} " + " ".join(f"n={n}: {ms[n]:.2f}" for n in settings.per_token_lengths))
        flatness.append(f"{e} {ms[last] / ms[first]:.2f}x" if ms[first] > 0 else f"{e} n/a")
    print(
        f"{name:<9} ms per new token (greedy b8, medians of {settings.rounds}): " + "; ".join(cells),
        flush=True,
    )
    print(
        f"{name:<9} ms per token at n={last} / at n={first} (1.00x: flat): " + ", ".join(flatness), flush=True
    )
    weights, kv_first = cache_bytes_per_step(name, 8, settings.prompt, first)
    _, kv_last = cache_bytes_per_step(name, 8, settings.prompt, last)
    for label, w in (("fp32", weights), ("int8", weights / 4)):
        bound = (w + kv_last) / (w + kv_first)
        print(
            f"{name:<9} bytes read per step ({label} weights {w / 1e6:.0f} MB, fp32 cache {kv_first / 1e6:.1f} MB at "
            f"n={first}, {kv_last / 1e6:.1f} MB at n={last}): inherent growth at most {bound:.2f}x",
            flush=True,
        )


KERNEL_SHAPES = [(2048, 512), (512, 2048), (1536, 512), (32128, 512), (3072, 768), (768, 3072), (50257, 768)]


def kernels(quick: bool) -> None:
    """Billions of weights per second of each few-row kernel, the weights streamed from memory."""
    from torch import nn

    from t2t.generation.kernels import _packed_bf16
    from t2t.model.quantize import QuantizedLinear

    try:
        from torchao.quantization import (
            Int8DynamicActivationInt8WeightConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )
    except ImportError:
        quantize_ = None
    torch.set_num_threads(THREADS)
    shapes, budget, repeats = (KERNEL_SHAPES[:1], 8e6, 2) if quick else (KERNEL_SHAPES, 120e6, 7)

    def rate(run, weights: int) -> float:  # type: ignore[no-untyped-def]
        run()
        best = min(_seconds(run) for _ in range(repeats))
        return weights / best / 1e9

    names = ["fp32", "bf16", "bf16-packed", "int8-dyn", "int8-wo", "ao-wo", "ao-dyn"]
    print("G weights/s (higher is better), weights streamed from memory, best of", repeats)
    print(f"{'weight':>12} {'rows':>4} " + " ".join(f"{n:>11}" for n in names))
    for out_features, in_features in shapes:
        copies = max(2, int(budget // (out_features * in_features * 4)))
        layers = [nn.Linear(in_features, out_features, bias=False) for _ in range(copies)]
        bf16 = [layer.weight.detach().bfloat16() for layer in layers]
        dyn = [QuantizedLinear.from_float(layer, "int8-dynamic") for layer in layers]
        wo = [QuantizedLinear.from_float(layer, "int8-weight-only") for layer in layers]
        ao: dict[str, list] = {}
        if quantize_ is not None:
            for label, config in (
                ("ao-wo", Int8WeightOnlyConfig),
                ("ao-dyn", Int8DynamicActivationInt8WeightConfig),
            ):
                ao[label] = []
                for layer in layers[: max(2, copies // 4)]:  # fewer copies: each call is slow
                    copy = nn.Linear(in_features, out_features, bias=False)
                    copy.load_state_dict(layer.state_dict())
                    quantize_(copy, config())
                    ao[label].append(copy)
        total = copies * out_features * in_features
        for rows in (1, 4, 8):
            x = torch.randn(rows, in_features)
            for w in bf16:
                _packed_bf16(w, rows)  # packed once, as decoding does, before timing
            runs = _kernel_runs(x, layers, bf16, dyn, wo, ao)
            with torch.inference_mode():
                cells = []
                for n in names:
                    if n not in runs:
                        cells.append(f"{'n/a':>11}")
                        continue
                    run, weights = runs[n]
                    cells.append(f"{rate(run, total if weights is None else weights):>11.1f}")
            print(f"{out_features:>6}x{in_features:<5} {rows:>4} " + " ".join(cells), flush=True)


def _kernel_runs(x, layers, bf16, dyn, wo, ao) -> dict:  # type: ignore[no-untyped-def]
    """name -> (a run over every copy of the weight, weights it reads or None for all copies)."""
    import torch.nn.functional as F

    from t2t.generation.kernels import few_row_linear

    xb = x.bfloat16()
    runs = {
        "fp32": (lambda: [few_row_linear(x, layer.weight) for layer in layers], None),
        "bf16": (lambda: [F.linear(xb, w) for w in bf16], None),
        "bf16-packed": (lambda: [few_row_linear(xb, w) for w in bf16], None),
        "int8-dyn": (lambda: [layer(x) for layer in dyn], None),
        "int8-wo": (lambda: [layer(x) for layer in wo], None),
    }
    for label, group in ao.items():
        size = group[0].in_features * group[0].out_features * len(group)
        runs[label] = ((lambda group=group: [layer(x) for layer in group]), size)
    return runs


def _seconds(run) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


QUALITY_PRECISIONS = (
    ("fp32", None, None),
    ("bf16", "bfloat16", None),
    ("int8-dynamic", None, "int8-dynamic"),
    ("int8-weight-only", None, "int8-weight-only"),
)


def quality(directory: Path, max_new_tokens: int = 24) -> None:
    """Each quickstart task's scores per precision against fp32's, and the answers' agreement."""
    from t2t.evaluate import resolve_tasks
    from t2t.generation import load_pipeline
    from t2t.metrics import compute
    from t2t.quickstart.tasks import QUICKSTART_TASKS, register_quickstart_tasks

    register_quickstart_tasks()
    tasks = resolve_tasks(list(QUICKSTART_TASKS))
    answers: dict[str, dict[str, list[str]]] = {}
    scores: dict[str, dict[str, dict[str, float]]] = {}
    tokenizer = None
    for label, dtype, mode in QUALITY_PRECISIONS:
        pipe = load_pipeline(
            directory, dtype=dtype, quantize=mode, batch_size=64, max_new_tokens=max_new_tokens
        )
        tokenizer = pipe.tokenizer
        start = time.perf_counter()
        for task in tasks:
            examples = list(task.examples("test"))
            predicted = pipe([e["inputs"] for e in examples])
            answers.setdefault(task.name, {})[label] = predicted
            refs = [task.postprocess(e["targets"]) for e in examples]
            values: dict[str, float] = {}
            for metric in task.metrics:
                values.update(compute(metric, [task.postprocess(a) for a in predicted], refs))
            scores.setdefault(task.name, {})[label] = values
        print(f"{label}: every task answered in {time.perf_counter() - start:.1f} s", flush=True)
    print(
        f"{'task':<22} {'metric':<12} {'precision':<17} {'score':>7} {'vs fp32':>8} {'same answer':>12} {'token agree':>12}"
    )
    worst: dict[str, float] = {}
    for task in tasks:
        base = answers[task.name]["fp32"]
        for label, _, _ in QUALITY_PRECISIONS:
            got = answers[task.name][label]
            same = sum(a == b for a, b in zip(got, base)) / len(base)
            agree = _token_agreement(tokenizer, got, base)
            for metric, value in scores[task.name][label].items():
                diff = value - scores[task.name]["fp32"][metric]
                if label != "fp32":
                    worst[label] = max(worst.get(label, 0.0), abs(diff))
                print(
                    f"{task.name:<22} {metric:<12} {label:<17} {value:>7.2f} {diff:>+8.2f} {same:>12.1%} {agree:>12.1%}"
                )
    for label, gap in worst.items():
        verdict = "met" if gap <= 1.0 else "NOT met"
        print(
            f"verdict quality {label}: largest score change vs fp32 {gap:.2f} points (goal <= 1: {verdict})"
        )


def _token_agreement(tokenizer, answers: list[str], reference: list[str]) -> float:  # type: ignore[no-untyped-def]
    same = total = 0
    for a, b in zip(answers, reference):
        x, y = tokenizer.encode(a, add_special_tokens=False), tokenizer.encode(b, add_special_tokens=False)
        total += max(len(x), len(y), 1)
        same += sum(p == q for p, q in zip(x, y)) + (1 if not x and not y else 0)
    return same / total


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--models", default=None, help="t2t preset names, t5-* or gpt2* (t5-small,gpt2)")
    parser.add_argument("--rounds", type=int, default=None, help="timed runs per engine and workload (3)")
    parser.add_argument("--engines", default=None, help=f"comma-separated, of {', '.join(ENGINES)}")
    parser.add_argument(
        "--plain", action="store_true", help="also time t2t without its few-row kernels (T2T_FAST_DECODE=0)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test only: tiny models, 1 round, short prompts and outputs",
    )
    parser.add_argument("--kernels", action="store_true", help="the few-row kernels of each precision")
    parser.add_argument(
        "--quality", metavar="DIR", help="a trained quickstart model: task scores per precision vs fp32"
    )
    parser.add_argument("--memory-child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quality:
        torch.set_num_threads(THREADS)
        quality(Path(args.quality))
        return
    if args.kernels:
        kernels(args.quick)
        return
    if args.memory_child:
        engine, name, directory, prompt, batch, beams, new = args.memory_child
        memory_child(engine, name, directory, int(prompt), Workload("", int(batch), int(beams), int(new)))
        return
    base = QUICK if args.quick else FULL
    settings = Settings(
        base.prompt,
        base.workloads,
        base.per_token_lengths,
        args.models or base.models,
        args.rounds or base.rounds,
    )
    engines = [e.strip() for e in (args.engines or DEFAULT_ENGINES).split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        parser.error(f"unknown engine {unknown[0]!r}; choose from {', '.join(ENGINES)}")
    if args.plain and "t2t-plain" not in engines:
        engines.append("t2t-plain")
    if "t2t" not in engines:
        engines.insert(0, "t2t")  # the reference of the ratios and of "agree"
    torch.set_num_threads(THREADS)
    if args.quick:
        print("QUICK SMOKE RUN: tiny models and short runs; the figures below mean nothing")
    if not ctranslate2_available():
        skipped = [e for e in engines if ENGINES[e].library == "ctranslate2"]
        engines = [e for e in engines if e not in skipped]
        if skipped:
            print(
                f"note: ctranslate2 is not installed (pip install ctranslate2): {', '.join(skipped)} skipped"
            )
    else:
        import ctranslate2

        print(f"ctranslate2 {ctranslate2.__version__}: no bfloat16 on CPU, so no ct2-bf16 engine")
    new = ", ".join(f"{w.label}: {w.new_tokens}" for w in settings.workloads)
    print(
        f"torch {torch.__version__}, {THREADS} threads, prompts of {settings.prompt} tokens, new tokens "
        f"({new}), eos off everywhere, medians of {settings.rounds} interleaved rounds"
    )
    print(
        f"{'model':<9} {'workload':<10} {'engine':<12} {'tok/s':>9} {'vs t2t':>8} {'agree':>6} "
        f"{'alloc MB':>8} {'RSS gen':>8} {'RSS model':>9} {'RSS peak':>9} {'disk MB':>8}"
    )
    lines = []
    for name in settings.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            dirs = prepare(name, Path(tmp), engines)
            lines += compare(name, dirs, engines, settings, args.quick)
    print()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
