"""Sequence-level training: the loss of a batch is the log-likelihood of the model's own sampled outputs,
weighted by how much better each scored than a baseline (REINFORCE with a baseline).

- SCST (self-critical sequence training, Rennie et al. 2017): one sample per input; the baseline is
  the reward of the model's own greedy output for that input, so only samples that beat what the model
  would answer anyway are reinforced.
- MRT-style (minimum risk training with N samples): `samples` outputs per input; the baseline is their
  mean reward (the leave-one-out mean, so a sample is not its own baseline).

The reward compares an output's text with the reference: any t2t metric scored per example (chrf,
bleu, rouge, exact_match, token_f1, accuracy) or `module:function` taking (predictions, references) and
returning one float each. An optional KL penalty to the model the run started from keeps the policy
near it. Training unlike the model's own decoding is what teacher forcing does (exposure bias); this
trains on what the model generates.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from t2t.errors import ConfigError
from t2t.model.loss import IGNORE_INDEX

Reward = Callable[[Sequence[str], Sequence[str]], list[float]]


@dataclass
class RLStats:
    reward: float  # mean reward of the samples
    baseline: float  # mean baseline
    kl: float  # mean per-token KL estimate to the starting model (0 without a penalty)
    sample_length: float  # mean tokens per sample


def reward_function(name: str) -> Reward:
    """A metric of t2t.metrics scored one example at a time (0-100 scales become 0-1), or a callable
    named `module:function`."""
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            function = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"rl.reward={name!r}: cannot import it ({err}); give module:function") from None
        if not callable(function):
            raise ConfigError(f"rl.reward={name!r} is not a function")
        return function
    from t2t.metrics import compute, get_metric

    get_metric(name)  # an unknown name is a ConfigError now, not at the first step

    def per_example(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
        scores = []
        for prediction, reference in zip(predictions, references):
            value = next(iter(compute(name, [prediction], [reference]).values()))
            scores.append(float(value) / (100.0 if value > 1.0 or name in _PERCENT else 1.0))
        return scores

    return per_example


_PERCENT = {"chrf", "bleu", "exact_match", "token_f1", "accuracy", "rouge"}


class SequenceLevelLoss:
    """`loss, stats = rl(batch)`: the policy-gradient loss of one micro-batch (summed over its rows;
    the caller divides by the rows of the whole step) and what to log."""

    def __init__(self, model: Any, tokenizer: Any, cfg: Any) -> None:
        if tokenizer is None:
            raise ConfigError("rl needs a tokenizer to turn outputs into text for the reward")
        if model.config.arch != "encoder-decoder":
            raise ConfigError(
                f"rl trains encoder-decoders (text to text); this model is a {model.config.arch}"
            )
        self.model, self.tokenizer, self.cfg = model, tokenizer, cfg
        self.reward = reward_function(cfg.reward)
        self.reference = None
        if cfg.kl_weight > 0:  # the starting model, frozen, for the KL penalty
            self.reference = copy.deepcopy(model).eval().requires_grad_(False)

    def __call__(self, forward: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, RLStats]:
        cfg, model = self.cfg, self.model
        ids, mask = batch["input_ids"], batch["attention_mask"]
        references = self._texts(batch["labels"])
        samples, greedy = self._decode(ids, mask)
        sampled_texts = self._texts(samples)
        rewards = torch.tensor(
            self.reward(sampled_texts, [r for r in references for _ in range(cfg.samples)])
        )
        baseline = self._baseline(rewards, greedy, references)
        advantage = (rewards - baseline).to(ids.device)
        log_probs, kl, lengths = self._sequence_log_probs(forward, ids, mask, samples)
        loss = -(advantage * log_probs).sum() + cfg.kl_weight * kl.sum()
        if cfg.mle_weight > 0:  # keep some teacher forcing beside the samples
            loss = loss + cfg.mle_weight * _teacher_forced_sum(forward, model, batch)
        stats = RLStats(
            reward=float(rewards.mean()),
            baseline=float(baseline.mean()),
            kl=float(kl.detach().mean()) if self.reference is not None else 0.0,
            sample_length=float(lengths.float().mean()),
        )
        return loss / cfg.samples, stats

    @torch.no_grad()
    def _decode(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        from t2t.generation.search import generate

        cfg, model = self.cfg, self.model
        was_training = model.training
        model.eval()  # no dropout in the samples: the policy is the model as it decodes
        try:
            options = {"max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature}
            samples = generate(
                model,
                ids.repeat_interleave(cfg.samples, dim=0),
                mask.repeat_interleave(cfg.samples, dim=0),
                do_sample=True,
                top_k=0,
                **options,
            )
            greedy = None
            if cfg.method == "scst":
                greedy = generate(model, ids, mask, do_sample=False, max_new_tokens=cfg.max_new_tokens)
        finally:
            model.train(was_training)
        return samples, greedy

    def _baseline(
        self, rewards: torch.Tensor, greedy: torch.Tensor | None, references: list[str]
    ) -> torch.Tensor:
        if greedy is not None:  # SCST: what the model answers by itself
            base = torch.tensor(self.reward(self._texts(greedy), references))
            return base.repeat_interleave(self.cfg.samples)
        groups = rewards.view(-1, self.cfg.samples)  # MRT: the mean reward of the other samples
        if self.cfg.samples == 1:
            return torch.zeros_like(rewards)
        others = (groups.sum(1, keepdim=True) - groups) / (self.cfg.samples - 1)
        return others.reshape(-1)

    def _sequence_log_probs(
        self, forward: Any, ids: torch.Tensor, mask: torch.Tensor, samples: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per sample: the summed log-probability of its tokens (with gradient), the summed KL estimate
        to the starting model, and its length (tokens up to and with the end of sequence)."""
        model, n = self.model, self.cfg.samples
        decoder_inputs = samples[:, :-1]
        targets = samples[:, 1:].clone()
        keep = _up_to_eos(targets, model.config.eos_id, model.config.pad_id)
        targets[~keep] = IGNORE_INDEX
        enc_ids, enc_mask = ids.repeat_interleave(n, dim=0), mask.repeat_interleave(n, dim=0)
        logits = forward(input_ids=enc_ids, attention_mask=enc_mask, decoder_input_ids=decoder_inputs).logits
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        picked = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1) * keep
        kl = torch.zeros(samples.shape[0], device=samples.device)
        if self.reference is not None:
            with torch.no_grad():
                ref = self.reference(
                    input_ids=enc_ids, attention_mask=enc_mask, decoder_input_ids=decoder_inputs
                )
                ref_log_probs = torch.log_softmax(ref.logits.float(), dim=-1)
                ref_picked = ref_log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            kl = ((picked - ref_picked) * keep).sum(1)  # log p - log p_ref on the policy's own tokens
        return picked.sum(1), kl, keep.sum(1)

    def _texts(self, rows: torch.Tensor) -> list[str]:
        cleaned = [[t for t in row.tolist() if t >= 0] for row in rows]
        return self.tokenizer.decode_batch(cleaned, skip_special_tokens=True)


def _up_to_eos(targets: torch.Tensor, eos_id: int | None, pad_id: int) -> torch.Tensor:
    """True for the generated tokens up to and with the first end of sequence (padding after it not)."""
    if eos_id is None:
        return targets != pad_id
    ended = (targets == eos_id).int().cumsum(1)
    return (ended == 0) | ((ended == 1) & (targets == eos_id))


def _teacher_forced_sum(forward: Any, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    from t2t.model.loss import token_cross_entropy

    inputs = {k: v for k, v in batch.items() if k != "labels"}
    inputs.setdefault("decoder_input_ids", model.shift_right(batch["labels"]))
    logits = forward(**inputs).logits
    tokens = (batch["labels"] != IGNORE_INDEX).sum().clamp(min=1)
    return token_cross_entropy(logits, batch["labels"], reduction="sum") / tokens * batch["labels"].shape[0]
