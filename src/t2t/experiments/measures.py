"""What the experiments measure, each a small function that can be checked on a hand-made case.

- divergence: a run diverged when the Trainer stopped it (TrainingDiverged: non-finite or dead steps in
  a row) or when its loss left the finite range or rose above `factor` x its starting value (exploded);
- `trained`: its final loss is at most a threshold;
- gradient norms by layer: one forward / backward pass of a fixed probe batch, the L2 norm of each
  block's parameter gradients, bottom to top (the encoder's blocks, then the decoder's);
- the error rate by output position (exposure bias): free-running (greedy) and teacher-forced;
- KV-cache bytes and decoding speed; time per training step; time of the norm layer alone.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

IGNORE = -100


# ------------------------------------------------------------------------------------------- divergence
def loss_diverged(losses: Sequence[float], initial: float | None = None, factor: float = 1.5) -> str | None:
    """Why a loss curve counts as diverged, or None: a non-finite value in its last tenth (a step or two
    the Trainer skipped earlier is not divergence: it stops a run only after max_bad_steps in a row), or
    (with `initial`, the loss before training) every value of the last tenth above factor x initial."""
    tail = list(losses[-max(1, len(losses) // 10) :])
    if any(not math.isfinite(x) for x in tail):
        return "non-finite loss"
    if initial is not None and math.isfinite(initial) and tail and min(tail) > factor * initial:
        return f"exploded (loss {min(tail):.3g} > {factor:g} x initial {initial:.3g})"
    return None


def final_loss(losses: Sequence[float]) -> float:
    """The mean training loss of the last tenth of the steps (at least one): less noisy than the last."""
    if not losses:
        return math.nan
    tail = losses[-max(1, len(losses) // 10) :]
    return sum(tail) / len(tail)


@torch.no_grad()
def batch_loss(model: Any, batch: dict[str, torch.Tensor]) -> float:
    """The model's loss on one batch (whatever mode the model is in)."""
    device = next(model.parameters()).device
    out = model(**{k: v.to(device) for k, v in batch.items()})
    return float(out.loss)


# ------------------------------------------------------------------------------- gradients by layer
def blocks(model: Any) -> list[tuple[str, torch.nn.Module]]:
    """(name, block) of every transformer block, bottom to top: encoder.0.. then decoder.0.."""
    out = []
    for stack_name in ("encoder", "decoder"):
        stack = getattr(model, stack_name, None)
        for i, block in enumerate(getattr(stack, "layers", None) or []):
            out.append((f"{stack_name}.{i}", block))
    return out


def grad_norms_by_layer(model: Any, batch: dict[str, torch.Tensor]) -> list[float]:
    """L2 norm of each block's parameter gradients for the loss of `batch` (no .grad is touched)."""
    device = next(model.parameters()).device
    named = blocks(model)
    params = [[p for p in block.parameters() if p.requires_grad] for _, block in named]
    flat = [p for group in params for p in group]
    with torch.enable_grad():
        loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
        grads = torch.autograd.grad(loss, flat, allow_unused=True)
    norms, k = [], 0
    for group in params:
        total = 0.0
        for g in grads[k : k + len(group)]:
            if g is not None:
                total += float(g.detach().float().pow(2).sum())
        norms.append(math.sqrt(total))
        k += len(group)
    return norms


# ------------------------------------------------------------------------------ errors by position
def position_errors(
    predictions: Sequence[Sequence[int]], targets: Sequence[Sequence[int]]
) -> tuple[list[float], list[int]]:
    """(error rate, examples) at each output position: position t of an example whose target has more
    than t tokens is wrong when the prediction has no token t or a different one there. Predictions
    and targets are token ids up to and including the end-of-sequence token."""
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions but {len(targets)} targets")
    width = max((len(t) for t in targets), default=0)
    errors, counts = [0] * width, [0] * width
    for pred, gold in zip(predictions, targets, strict=True):
        for t, token in enumerate(gold):
            counts[t] += 1
            if t >= len(pred) or pred[t] != token:
                errors[t] += 1
    return [e / c if c else math.nan for e, c in zip(errors, counts, strict=True)], counts


def sequence_scores(
    predictions: Sequence[Sequence[int]], targets: Sequence[Sequence[int]]
) -> dict[str, float]:
    """exact_match (whole sequence, %) and token_accuracy (% of target positions right, by position)."""
    exact = sum(list(p) == list(t) for p, t in zip(predictions, targets, strict=True))
    right = total = 0
    for pred, gold in zip(predictions, targets, strict=True):
        total += len(gold)
        right += sum(1 for i, tok in enumerate(gold) if i < len(pred) and pred[i] == tok)
    n = max(len(targets), 1)
    return {"exact_match": 100.0 * exact / n, "token_accuracy": 100.0 * right / max(total, 1)}


def cut_at_eos(ids: Sequence[int], eos_id: int) -> list[int]:
    """Generated ids up to and including the first EOS (all of them when there is none)."""
    out = []
    for token in ids:
        out.append(int(token))
        if token == eos_id:
            break
    return out


@torch.no_grad()
def teacher_forced_predictions(model: Any, batch: dict[str, torch.Tensor]) -> list[list[int]]:
    """Each row's argmax prediction at every target position, given the gold prefix (teacher forcing),
    aligned with the labels (for a decoder-only model: the positions whose label is not -100)."""
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    logits = model(**batch).logits
    labels = batch["labels"]
    if model.config.arch == "decoder":  # logits at t predict token t + 1
        logits, labels = logits[:, :-1], labels[:, 1:]
    argmax = logits.argmax(-1)
    return [row[lab != IGNORE].tolist() for row, lab in zip(argmax, labels, strict=True)]


def label_rows(batch: dict[str, torch.Tensor], arch: str) -> list[list[int]]:
    labels = batch["labels"]
    if arch == "decoder":
        labels = labels[:, 1:]
    return [row[row != IGNORE].tolist() for row in labels]


# ------------------------------------------------------------------------------- decoding: cache, speed
@torch.no_grad()
def kv_cache_bytes(model: Any, batch_size: int, length: int) -> int:
    """Bytes the self-attention KV cache holds after `length` tokens for `batch_size` rows: measured on
    the cache of a forward pass (keys and values of every layer, the filled part of each buffer)."""
    device = next(model.parameters()).device
    ids = torch.randint(3, model.config.vocab_size, (batch_size, length), device=device)
    cache = model.new_cache(length)
    was_training = model.training
    model.eval()
    try:
        if model.config.arch == "decoder":
            model(ids, cache=cache)
        else:
            memory = model.encode(ids[:, :4])
            model.decode(ids, memory, cache=cache)
    finally:
        model.train(was_training)
    total = 0
    for layer in cache.layers:
        for tensor in (layer.keys, layer.values):
            if tensor is not None:
                total += tensor[:, :, : layer.length].numel() * tensor.element_size()
    return total


def decode_speed(
    model: Any, *, batch_size: int, prompt_length: int, new_tokens: int, repeats: int = 3, seed: int = 0
) -> float:
    """Generated tokens per second of greedy decoding with the KV cache (every row runs to new_tokens:
    no end-of-sequence stop), the best of `repeats` timings after one warm-up."""
    from t2t.generation.search import generate

    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    ids = torch.randint(3, model.config.vocab_size, (batch_size, prompt_length), generator=g).to(device)
    mask = torch.ones_like(ids)
    model.eval()

    def once() -> float:
        start = time.perf_counter()
        generate(model, ids, mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens, eos_token_id=[])
        return time.perf_counter() - start

    once()
    best = min(once() for _ in range(max(1, repeats)))
    return batch_size * new_tokens / best


# ------------------------------------------------------------------------------------------- timing
def step_seconds(run_dir: Path, skip: int = 5) -> float:
    """Median seconds of a training step, from metrics.jsonl's train records (tokens / tokens_per_s; the
    run must log every step), after the first `skip` steps (warm-up)."""
    seconds = []
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return math.nan
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("kind") != "train" or record.get("step", 0) <= skip:
            continue
        rate = record.get("tokens_per_s") or 0.0
        if rate > 0:
            seconds.append(record["tokens"] / rate)
    return statistics.median(seconds) if seconds else math.nan


def norm_seconds(
    config: Any, *, rows: int = 32, length: int = 64, repeats: int = 200, seed: int = 0
) -> float:
    """Seconds of one forward + backward pass of the model's norm layer alone on [rows, length, d_model]
    (the median of `repeats`, after 20 warm-up passes)."""
    from t2t.model.norms import make_norm

    torch.manual_seed(seed)
    norm = make_norm(config)
    x = torch.randn(rows, length, config.d_model, requires_grad=True)
    times = []
    for i in range(repeats + 20):
        start = time.perf_counter()
        norm(x).sum().backward()
        if i >= 20:
            times.append(time.perf_counter() - start)
        x.grad = None
    return statistics.median(times)
