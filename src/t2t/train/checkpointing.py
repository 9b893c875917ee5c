"""A run's checkpoints as the Trainer uses them: write the current step (rank 0 writes, every rank
takes part in FSDP's gathers), move `last` and `best`, keep the newest few, and find what to resume.

The files and their atomic writes are t2t.train.checkpoint's; what a trainer state holds is the
Trainer's. Resuming checks that the run's config still describes the checkpoint's run
(t2t.train.resume) before any weight is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from t2t.errors import CheckpointError
from t2t.peft.files import adapter_writer, has_adapter, saved_adapter_state
from t2t.peft.inject import apply_peft, without_adapters
from t2t.train import checkpoint, distributed
from t2t.train.config import TrainConfig
from t2t.train.resume import resume_changes
from t2t.utils.log import logger

log = logger("train")


class RunCheckpoints:
    def __init__(self, cfg: TrainConfig, dist: distributed.DistInfo) -> None:
        self.cfg, self.dist = cfg, dist
        self.root = Path(cfg.run_dir) / "checkpoints"
        self.last_saved: Path | None = None

    @property
    def fsdp(self) -> bool:
        return self.dist.enabled and self.cfg.distributed.strategy == "fsdp"

    def saved_at(self, step: int) -> bool:
        """This step's checkpoint is written (by an improving evaluation, or before a resume)."""
        return self.last_saved is not None and self.last_saved.name == checkpoint.step_dir_name(step)

    def link(self, name: str) -> Path | None:
        return checkpoint.resolve_link(self.root, name)

    def kept(self) -> str:
        """What a run that stops now leaves behind, for its closing line."""
        good = self.link("last")
        return f"the last good checkpoint is {good}" if good else "no checkpoint was written"

    def save(
        self,
        step: int,
        model: Any,
        wrapped: Any,
        optimizer: torch.optim.Optimizer,
        tokenizer: Any,
        state: dict[str, Any],
        summary: dict[str, Any],
    ) -> Path | None:
        """Write checkpoint `step` and point `last` at it; returns its directory on rank 0."""
        model, state["optimizer"] = self._full_model_and_optimizer(model, wrapped, optimizer)
        directory = None
        if self.dist.is_main:
            # PEFT: the model files hold the base weights, the adapter is written beside them (t2t.peft)
            adapter = None
            if getattr(model, "peft_config", None) is not None:
                adapter = adapter_writer(model, base_model=self.cfg.model.checkpoint)
            with without_adapters(model):
                directory = checkpoint.save_checkpoint(
                    self.root,
                    step,
                    model,
                    tokenizer,
                    state,
                    summary,
                    weight_format=self.cfg.checkpoint.format,
                    extra=adapter,
                )
            checkpoint.point(self.root, "last", directory)
            checkpoint.prune(self.root, self.cfg.checkpoint.keep_last, {directory, self.link("best")})
        distributed.barrier(self.dist)
        self.last_saved = directory or self.root / checkpoint.step_dir_name(step)
        return directory

    def point_best(self, directory: Path | None) -> None:
        if self.dist.is_main and directory is not None:
            checkpoint.point(self.root, "best", directory)

    def _full_model_and_optimizer(self, model: Any, wrapped: Any, optimizer: Any) -> tuple[Any, Any]:
        """The model with all its weights and the optimizer state on this process (FSDP: gathered to
        rank 0, the model as a CPU copy)."""
        if not self.fsdp:
            return model, optimizer.state_dict()
        weights, optim_state = distributed.full_state_dicts(wrapped, optimizer)
        if not self.dist.is_main:
            return None, optim_state
        from t2t.model.build import build_model

        copy = build_model(model.config)
        if getattr(model, "peft_config", None) is not None:
            apply_peft(copy, model.peft_config, init=False)  # the same adapters, to take their weights
        copy.load_state_dict(weights)
        return copy, optim_state

    def resume(self, model: Any) -> dict[str, Any] | None:
        """The trainer state of `last` with the checkpoint's weights loaded into `model`, or None
        when the run has no checkpoint yet (it starts from step 0)."""
        directory = self.link("last")
        link = self.root / "last"
        if directory is None and link.is_symlink():
            steps = sorted(p.name for p in self.root.glob("step-*") if p.is_dir())
            hint = f"point it at {steps[-1]} (ln -sfn {steps[-1]} {link})" if steps else "remove it"
            raise CheckpointError(f"{link} points at {os.readlink(link)}, which is missing; {hint}")
        if directory is None:
            self._say(f"no checkpoint in {self.root}; starting from step 0")
            return None
        from t2t.hub import from_pretrained

        state = checkpoint.load_state(directory)
        saved_config = state.get("config")
        if isinstance(saved_config, dict):
            changes = resume_changes(saved_config, self.cfg.to_dict())
            if changes:
                self._say(f"resuming with {'; '.join(changes)} (from step {state['step']} on)")
        weights = from_pretrained(directory, adapter=False).state_dict()
        if has_adapter(directory):  # PEFT: the adapter's tensors, in t2t names, beside the base weights
            weights.update(saved_adapter_state(directory))
        load_weights(model, weights, directory)
        state["directory"] = directory
        self.last_saved = directory
        return state

    def _say(self, line: str) -> None:
        if self.dist.is_main:
            log.info(line)


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], directory: Path) -> None:
    """Load a checkpoint's weights into the configured model; a shape that differs is named, with
    both shapes, instead of torch's many-line size-mismatch error."""
    expected = model.state_dict()
    for name, tensor in weights.items():
        if name in expected and expected[name].shape != tensor.shape:
            raise CheckpointError(
                f"{directory}: weight {name!r} has shape {tuple(tensor.shape)} in the checkpoint but "
                f"{tuple(expected[name].shape)} in the configured model; resume with the model settings "
                "the run started with (model.preset / model.overrides)"
            )
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        first = " ".join(str(err).split())[:300]
        raise CheckpointError(f"{directory}: weights do not fit the configured model ({first})") from None
