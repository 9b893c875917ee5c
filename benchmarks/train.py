"""Training speed and memory of t2t against transformers on the same model shapes (issue 5's figures).

    .venv/bin/python benchmarks/train.py                     # t5-small and gpt2 shapes, 3 rounds
    .venv/bin/python benchmarks/train.py --models t5-small --rounds 5 --steps 8

Models: t2t.preset("t5-small") (batch 8, inputs 128, targets 32 tokens) and t2t.preset("gpt2") (batch 4,
256 tokens), randomly initialised with dropout 0.1, saved once in Hugging Face's format and loaded by
both libraries, so both train identical weights on identical batches. A training step is forward with
labels, backward, AdamW (torch.optim.AdamW with fused=True, the default of transformers' Trainer on
torch >= 2.8 and t2t's; lr 1e-4, the same parameter groups: weight decay 0.01 on matrices), zero_grad.
t2t runs its Trainer's step (`Trainer._train_step`: token-normalised loss, gradient-norm clipping at
1.0, the malloc tuning of t2t.train.speed); transformers runs the loop its
Trainer runs (model(**batch).loss.backward(), clip_grad_norm_(1.0), step, zero_grad). 2 threads.

Each measurement is a fresh subprocess (so one library's allocations and malloc settings never touch
the other's); the libraries alternate (A/B, then B/A) for --rounds rounds and medians are compared.
Tokens per second count input + target tokens (t5) or sequence tokens (gpt2) of each step. Memory: the
resident set's high-water mark from just before the model is loaded to the end of the timed steps, above
the resident size at that point (reset through /proc/self/clear_refs): weights, gradients, optimizer
state, activations and whatever malloc keeps. MFU: model FLOPs of a step (counted by
torch.utils.flop_counter on t2t's forward + backward; the same count for both) per second, over the
fp32 matmul peak measured in this run (median of 2048x2048x2048 torch.mm, 2 threads).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

THREADS = 2
SHAPES = {
    "t5-small": {"batch": 8, "inputs": 128, "targets": 32},
    "gpt2": {"batch": 4, "inputs": 256, "targets": 0},
}


# ------------------------------------------------------------------------------------------- worker
def make_batch(name: str, vocab: int) -> dict[str, torch.Tensor]:
    shape = SHAPES[name]
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (shape["batch"], shape["inputs"]), generator=g)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if shape["targets"]:
        batch["labels"] = torch.randint(3, vocab, (shape["batch"], shape["targets"]), generator=g)
    else:
        batch["labels"] = ids.clone()
    return batch


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _groups(model: torch.nn.Module) -> list[dict]:
    from t2t.train.optim import parameter_groups

    return parameter_groups(model, 0.01)


def worker(impl: str, name: str, directory: str, warmup: int, steps: int) -> dict:
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    if impl == "t2t":
        import t2t
        from t2t.train import TrainConfig, Trainer
    else:
        import transformers  # noqa: F401
    batch = make_batch(name, 32128 if name == "t5-small" else 50257)
    _reset_peak()
    base = _rss_kb("VmRSS")
    if impl == "t2t":
        import t2t

        model = t2t.from_pretrained(directory)
        model.train()
        cfg = TrainConfig.from_dict(
            {
                "run_dir": tempfile.mkdtemp(),
                "progress": False,
                "tensorboard": False,
                "optim": {"name": "adamw", "lr": 1e-4, "weight_decay": 0.01, "grad_clip": 1.0},
            }
        )
        trainer = Trainer(cfg, model=model, train_stream=iter(()))
        trainer._setup()  # what fit() does before its loop: device, malloc tuning, optimizer, scheduler
        stream_batch = dict(batch)
        if name == "t5-small":
            stream_batch["decoder_input_ids"] = model.shift_right(batch["labels"])

        def step() -> None:
            trainer._train_step([stream_batch])

    else:
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

        auto = AutoModelForSeq2SeqLM if name == "t5-small" else AutoModelForCausalLM
        model = auto.from_pretrained(directory)
        model.train()
        optimizer = torch.optim.AdamW(_groups(model), lr=1e-4, fused=True)

        def step() -> None:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = _rss_kb("VmHWM")
    return {"step_s": statistics.median(times), "peak_mb": (peak - base) / 1024}


# ------------------------------------------------------------------------------------------- driver
def save_model(name: str, directory: Path) -> None:
    import t2t

    torch.manual_seed(0)
    t2t.build_model(t2t.preset(name, dropout=0.1)).save_pretrained(directory)


def step_flops(name: str, directory: Path) -> float:
    """Forward + backward FLOPs of one training step of the model on its batch."""
    from torch.utils.flop_counter import FlopCounterMode

    import t2t

    model = t2t.from_pretrained(directory).train()
    batch = make_batch(name, model.config.vocab_size)
    with FlopCounterMode(display=False) as counter:
        model(**batch).loss.backward()
    return float(counter.get_total_flops())


def matmul_peak(size: int = 2048, repeats: int = 7) -> float:
    torch.set_num_threads(THREADS)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / statistics.median(times)


def measure(impl: str, name: str, directory: Path, warmup: int, steps: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", impl, name, str(directory), str(warmup), str(steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"{impl} {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        impl, name, directory, warmup, steps = args.worker
        print(json.dumps(worker(impl, name, directory, int(warmup), int(steps))))
        return
    torch.set_num_threads(THREADS)
    peak = matmul_peak()
    print(f"torch {torch.__version__}, {THREADS} threads; fp32 matmul peak {peak / 1e9:.1f} GFLOP/s")
    header = f"{'model':<9} {'library':<13} {'tok/s':>8} {'step ms':>8} {'peak MB':>8} {'MFU':>6}   per-round tok/s"
    rows, ratios = [header], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            directory = Path(tmp) / name
            save_model(name, directory)
            flops = step_flops(name, directory)
            shape = SHAPES[name]
            tokens = shape["batch"] * (shape["inputs"] + shape["targets"])
            results: dict[str, list[dict]] = {"t2t": [], "transformers": []}
            for r in range(args.rounds):
                order = ["t2t", "transformers"] if r % 2 == 0 else ["transformers", "t2t"]
                for impl in order:
                    results[impl].append(measure(impl, name, directory, args.warmup, args.steps))
            summary = {}
            for impl, runs in results.items():
                step_s = statistics.median(r["step_s"] for r in runs)
                mem = statistics.median(r["peak_mb"] for r in runs)
                summary[impl] = (tokens / step_s, mem)
                per_round = " ".join(f"{tokens / r['step_s']:.0f}" for r in runs)
                rows.append(
                    f"{name:<9} {impl:<13} {tokens / step_s:>8.0f} {step_s * 1e3:>8.0f} {mem:>8.0f} "
                    f"{flops / step_s / peak:>6.1%}   {per_round}"
                )
            speed = summary["t2t"][0] / summary["transformers"][0]
            memory = summary["t2t"][1] / summary["transformers"][1]
            ratios.append(f"{name}: t2t / transformers tokens/s {speed:.2f}x, peak memory {memory:.2f}x")
            print(f"{name}: {flops / 1e9:.1f} GFLOP per step, {tokens} tokens per step", flush=True)
    print("\n".join(rows))
    print("\n".join(ratios))


if __name__ == "__main__":
    main()
