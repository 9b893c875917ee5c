"""Full fine-tuning vs LoRA vs bottleneck adapters vs LoRA + activation checkpointing (issue 20's figures).

    .venv/bin/python benchmarks/peft.py                                   # t5-small and gpt2, then quality
    .venv/bin/python benchmarks/peft.py --models t5-small --rounds 3 --steps 3 --no-quality

Speed and memory: the t5-small shape (batch 8, inputs 128, targets 32 tokens) and the gpt2 shape (batch 4,
256 tokens) of benchmarks/train.py, randomly initialised with dropout 0.1 and saved once, trained by t2t's
Trainer step (AdamW lr 1e-4, weight decay 0.01, clipping at 1.0, the CPU malloc tuning) in each
configuration:

    full          every weight trains
    lora          peft.method=lora peft.r=8 peft.alpha=16 peft.target=[q,v]
    adapter       peft.method=adapter peft.bottleneck=64 (after attention and after the feed-forward)
    lora+ckpt     lora with train.activation_checkpointing=true

Each measurement is a fresh subprocess; the configurations take turns in an order that rotates every round,
and medians over rounds are reported (with --jobs N, N measurements of a round run at once: each
process's memory is still its own, but the timings then share the CPU): wall time of a step, and the CPU time of the process (both threads),
which moves less when other work shares the machine. Memory: the resident set's high-water mark from just before the
model is loaded to the end of the timed steps, above the resident size at that point (reset through
/proc/self/clear_refs): weights, gradients, optimizer state, activations and what malloc keeps.

Quality: a small T5 (d_model 64, d_ff 256, 2 + 2 layers, a sentencepiece vocabulary of 2,000 over the
tasks' training text) is trained in full on four built-in quickstart tasks (translate, sentiment,
question, summarize), then
adapted to the fifth, `quickstart_reasoning`, for the same number of steps in each configuration; the
exact match on its 100 validation examples is reported (full fine-tuning at lr 1e-3, LoRA and adapters
at 3e-3, as PEFT methods usually take a larger rate).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

THREADS = 2
SHAPES = {
    "t5-small": {"batch": 8, "inputs": 128, "targets": 32},
    "gpt2": {"batch": 4, "inputs": 256, "targets": 0},
}
LORA = {"method": "lora", "r": 8, "alpha": 16, "target": ["q", "v"]}
ADAPTER = {"method": "adapter", "bottleneck": 64}
CONFIGS: dict[str, dict[str, Any]] = {
    "full": {},
    "lora": {"peft": LORA},
    "adapter": {"peft": ADAPTER},
    "lora+ckpt": {"peft": LORA, "activation_checkpointing": True},
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


def worker(config: str, name: str, directory: str, warmup: int, steps: int) -> dict:
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    import t2t
    from t2t.train import TrainConfig, Trainer

    batch = make_batch(name, 32128 if name == "t5-small" else 50257)
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark starts again from here
    base = _rss_kb("VmRSS")
    model = t2t.from_pretrained(directory).train()
    cfg = TrainConfig.from_dict(
        {
            "run_dir": tempfile.mkdtemp(),
            "progress": False,
            "tensorboard": False,
            "optim": {"name": "adamw", "lr": 1e-4, "weight_decay": 0.01, "grad_clip": 1.0},
            **CONFIGS[config],
        }
    )
    trainer = Trainer(cfg, model=model, train_stream=iter(()))
    optimizer_step = trainer._setup()  # what fit() does before its loop: device, malloc, optimizer
    for i in range(warmup):
        optimizer_step([batch], i)
    times, cpu = [], []
    for i in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        optimizer_step([batch], warmup + i)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {
        "step_s": statistics.median(times),
        "cpu_s": statistics.median(cpu),
        "peak_mb": (_rss_kb("VmHWM") - base) / 1024,
        "trainable": trainable,
        "total": total,
    }


def measure(config: str, name: str, directory: Path, warmup: int, steps: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", config, name, str(directory), str(warmup), str(steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"{config} {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def speed_and_memory(models: list[str], rounds: int, warmup: int, steps: int, jobs: int = 1) -> list[str]:
    import t2t

    header = (
        "| model | config | trainable | peak MB | vs full | step ms | CPU ms | per-round step ms |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
    )
    rows = [header]
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            directory = Path(tmp) / name
            torch.manual_seed(0)
            t2t.build_model(t2t.preset(name, dropout=0.1)).save_pretrained(directory)
            names = list(CONFIGS)
            results: dict[str, list[dict]] = {c: [] for c in names}
            for r in range(rounds):
                order = names[r % len(names) :] + names[: r % len(names)]
                with ThreadPoolExecutor(jobs) as pool:  # jobs > 1: several subprocesses at once
                    futures = [pool.submit(measure, c, name, directory, warmup, steps) for c in order]
                    for config, future in zip(order, futures, strict=True):
                        result = future.result()
                        results[config].append(result)
                        print(f"  {name} round {r + 1} {config}: {result}", file=sys.stderr, flush=True)
            full_peak = statistics.median(x["peak_mb"] for x in results["full"])
            for config in names:
                runs = results[config]
                step = statistics.median(x["step_s"] for x in runs)
                cpu = statistics.median(x["cpu_s"] for x in runs)
                peak = statistics.median(x["peak_mb"] for x in runs)
                share = runs[0]["trainable"] / runs[0]["total"]
                per_round = " ".join(f"{x['step_s'] * 1e3:.0f}" for x in runs)
                rows.append(
                    f"| {name} | {config} | {runs[0]['trainable']:,} ({share:.2%}) | {peak:.0f} | "
                    f"{peak / full_peak:.2f}x | {step * 1e3:.0f} | {cpu * 1e3:.0f} | {per_round} |"
                )
    return rows


# ------------------------------------------------------------------------------------------ quality
QUALITY_TARGET = "quickstart_reasoning"
QUALITY_BASE = ("quickstart_translate", "quickstart_sentiment", "quickstart_question", "quickstart_summarize")


def quality(base_steps: int, steps: int, work: Path) -> list[str]:
    import t2t
    from t2t.data import Mixture, get_task, register_mixture
    from t2t.quickstart.tasks import register_quickstart_tasks
    from t2t.tokenizer import TokenizerConfig, train_tokenizer
    from t2t.train import TrainConfig, Trainer

    torch.set_num_threads(THREADS)
    register_quickstart_tasks()
    lines = []
    for task in (*QUALITY_BASE, QUALITY_TARGET):
        for example in get_task(task).examples("train"):
            lines += [example["inputs"], example["targets"]]
    (work / "text.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    tokenizer = train_tokenizer([work / "text.txt"], TokenizerConfig(vocab_size=2000, max_piece_length=8))
    tokenizer.save_pretrained(work / "tok")
    register_mixture(Mixture("peft_base", [get_task(t) for t in QUALITY_BASE], rate="equal"), overwrite=True)
    shape = {"d_model": 64, "d_ff": 256, "n_heads": 4, "head_dim": 16, "n_encoder_layers": 2,
             "n_decoder_layers": 2, "dropout": 0.0}  # fmt: skip
    data = {"batch_size": 12, "max_input_length": 96, "max_target_length": 24, "pack": True, "shuffle": True}

    def run(name: str, fields: dict[str, Any]) -> tuple[Any, float]:
        cfg = TrainConfig.from_dict(
            {
                "run_dir": str(work / name),
                "progress": False,
                "tensorboard": False,
                "log_every": 50,
                "checkpoint": {"keep_last": 1, "save_best": False},
                "schedule": {"name": "constant", "warmup_steps": 50},
                **fields,
            }
        )
        start = time.perf_counter()
        result = Trainer(cfg).fit()
        return result, time.perf_counter() - start

    base, seconds = run(
        "base",
        {
            "max_steps": base_steps,
            "model": {"preset": "t5-small", "tokenizer": str(work / "tok"), "overrides": shape},
            "data": {**data, "mixture": "peft_base"},
            "optim": {"name": "adamw", "lr": 1e-3},
        },
    )
    print(f"  base: {base_steps} steps in {seconds:.0f} s", file=sys.stderr, flush=True)
    rows = [
        f"| method | trainable | lr | {QUALITY_TARGET} exact match | train s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    from t2t.evaluate import evaluate

    before = evaluate(
        t2t.from_pretrained(base.last_checkpoint), tokenizer, [QUALITY_TARGET], split="validation",
        batch_size=64, max_new_tokens=24, progress=False,
    )  # fmt: skip
    score = before.scores[QUALITY_TARGET]["exact_match"]
    rows.append(f"| base, before adapting | - | - | {score:.1f} | - |")
    for name, fields, lr in (
        ("full", {}, 1e-3),
        ("lora", {"peft": LORA}, 3e-3),
        ("lora q,k,v,o,ffn", {"peft": {**LORA, "target": ["all"]}}, 3e-3),
        ("adapter", {"peft": ADAPTER}, 3e-3),
    ):
        result, seconds = run(
            name.replace(" ", "_").replace(",", ""),
            {
                "max_steps": steps,
                "model": {"checkpoint": str(base.last_checkpoint)},
                "data": {**data, "task": QUALITY_TARGET},
                "optim": {"name": "adamw", "lr": lr},
                "eval": {"tasks": [QUALITY_TARGET], "max_new_tokens": 24, "batch_size": 64},
                **fields,
            },
        )
        trainable = _trainable(fields, t2t.from_pretrained(result.last_checkpoint, adapter=False))
        score = result.final_metrics.get(f"{QUALITY_TARGET}/exact_match", float("nan"))
        rows.append(f"| {name} | {trainable:,} | {lr:g} | {score:.1f} | {seconds:.0f} |")
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def _trainable(fields: dict[str, Any], model: Any) -> int:
    if "peft" not in fields:
        return sum(p.numel() for p in model.parameters())
    from t2t.peft import PeftConfig, apply_peft

    apply_peft(model, PeftConfig.from_dict(fields["peft"]))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="measurements at once (memory stays exact; timings then share the CPU)",
    )
    parser.add_argument("--no-speed", action="store_true", help="skip the speed and memory table")
    parser.add_argument("--no-quality", action="store_true", help="skip the quality table")
    parser.add_argument("--base-steps", type=int, default=600, help="quality: steps of the multi-task base")
    parser.add_argument("--adapt-steps", type=int, default=300, help="quality: steps on the new task")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        config, name, directory, warmup, steps = args.worker
        print(json.dumps(worker(config, name, directory, int(warmup), int(steps))))
        return
    print(f"torch {torch.__version__}, {THREADS} threads")
    if not args.no_speed:
        rows = speed_and_memory(args.models, args.rounds, args.warmup, args.steps, args.jobs)
        print("\n".join(rows), flush=True)
    if not args.no_quality:
        with tempfile.TemporaryDirectory() as tmp:
            print("\n".join(quality(args.base_steps, args.adapt_steps, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
