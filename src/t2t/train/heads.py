"""The head objective: what the Trainer takes to train a task head (BERT's heads, GPT's input
transformations) or to pretrain BERT / GPT on a corpus file, in place of a text-to-text stream.

It holds what varies from text-to-text training: how a batch is made (features of data.train in a
resumable FeatureStream), and how the model is scored (its head's outputs on the evaluation file,
decoded into one prediction per example and scored with the objective's metrics). The loss is the
model's own (t2t.train.loss by the model's kind), and everything else is the Trainer's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from t2t.errors import ConfigError
from t2t.finetune import gpt_inputs
from t2t.finetune.builtin import corpus_tokenizer
from t2t.finetune.collate import collate
from t2t.finetune.features import Prepared, prepare
from t2t.finetune.objectives import HEAD_OBJECTIVES, head_of
from t2t.finetune.pretrain import corpus_features, held_out_scores
from t2t.finetune.resize import init_token_rows
from t2t.finetune.scoring import score
from t2t.finetune.spec import HeadSpec
from t2t.peft.config import HEAD_MODULES  # what a frozen backbone leaves trainable
from t2t.train.config import TrainConfig

_LABEL_KEYS = ("labels", "start_positions", "end_positions", "next_sentence_label")


@dataclass
class HeadObjective:
    model: Any
    tokenizer: Any
    stream: Any  # a FeatureStream of the training features
    evaluate: Callable[[Any], dict[str, float]]  # the model's scores on the evaluation file
    metric: str  # the first of the objective's metrics: what picks the best checkpoint by default
    train_examples: int
    eval_examples: int


def uses_heads(cfg: TrainConfig) -> bool:
    """Examples come from files: a head objective, or BERT / GPT pretraining on a corpus file."""
    return cfg.data.from_files


def head_spec(cfg: TrainConfig, arch: str) -> HeadSpec:
    d = cfg.data
    return HeadSpec(
        objective=d.objective,
        arch=arch,
        train=d.train or "",
        eval=d.test if cfg.eval.split == "test" else d.validation,
        text_field=d.text_field,
        pair_field=d.pair_field,
        label_field=d.label_field,
        limit_train=d.limit_train,
        limit_eval=d.limit_eval,
        max_length=d.max_input_length,
        options=dict(d.options),
        metrics=cfg.eval.metrics,
        seed=cfg.seed,
    )


def build_head_objective(
    cfg: TrainConfig, *, model: Any = None, tokenizer: Any = None, rank: int = 0, world_size: int = 1
) -> HeadObjective:
    """Tokenizer, model with its head, features and scorer of a head (or corpus pretraining) run."""
    from t2t.train.feature_stream import FeatureStream

    pretrained = _pretrained(cfg) if model is None else None
    base = model.config if model is not None else pretrained.config if pretrained else _base_config(cfg)
    spec = head_spec(cfg, base.arch)
    _check_objective(spec)
    _check_eval_file(cfg, spec)
    tokenizer = tokenizer if tokenizer is not None else _tokenizer(cfg, base.arch)
    added: list[int] = []
    if spec.objective in HEAD_OBJECTIVES and spec.family == "gpt":
        before = tokenizer
        tokenizer = gpt_inputs.add_gpt_tokens(tokenizer)
        added = [tokenizer.token_to_id(t) for t in gpt_inputs.GPT_TOKENS if before.token_to_id(t) is None]
    if spec.objective in HEAD_OBJECTIVES:
        data = prepare(spec, tokenizer)
        train, per_epoch, evaluate_features = data.train, len(data.train), data.test
        labels = (data.num_labels, data.label_names)
    else:
        corpus = corpus_features(spec, tokenizer, cfg.epochs)
        train, per_epoch, evaluate_features = corpus.train, corpus.examples_per_epoch, corpus.held_out
        labels = (2, None)
    if model is None:
        model = _model(cfg, spec, tokenizer, *labels, pretrained=pretrained)
    init_token_rows(model, added)
    _check_save_format(cfg, model)
    if cfg.model.freeze_encoder:
        freeze_backbone(model)
    pad = model.config.pad_id
    stream = FeatureStream(
        train,
        cfg.data.batch_size,
        partial(collate, pad_id=pad),
        cfg.data.seed,
        examples_per_epoch=per_epoch,
        rank=rank,
        world_size=world_size,
    )
    if spec.objective in HEAD_OBJECTIVES:
        evaluate = partial(_score_head, data=data, spec=spec, batch_size=cfg.eval.batch_size)
    else:
        evaluate = partial(_score_corpus, features=evaluate_features, batch_size=cfg.eval.batch_size)
    return HeadObjective(
        model, tokenizer, stream, evaluate, spec.metric_names[0], per_epoch, len(evaluate_features)
    )


def _check_objective(spec: HeadSpec) -> None:
    if spec.objective in HEAD_OBJECTIVES or spec.objective in ("mlm_nsp", "causal_lm"):
        if spec.objective == "mlm_nsp" and spec.arch != "encoder":
            raise ConfigError("objective='mlm_nsp' pretrains an encoder (BERT); the model is a " + spec.arch)
        if spec.objective == "causal_lm" and spec.arch != "decoder":
            raise ConfigError("objective='causal_lm' pretrains a decoder (GPT); the model is a " + spec.arch)
        if spec.objective in HEAD_OBJECTIVES and spec.arch not in ("encoder", "decoder"):
            raise ConfigError(
                f"objective={spec.objective!r} trains a BERT head or a GPT transformation; the model is an "
                f"{spec.arch} (train text-to-text with data.task instead)"
            )
        if spec.family == "gpt" and spec.objective in ("tagging", "span_qa"):
            raise ConfigError(f"objective={spec.objective!r} has no GPT form; use an encoder (BERT)")
        return
    raise ConfigError(
        f"data.train is a file, which the head objectives ({', '.join(HEAD_OBJECTIVES)}) and mlm_nsp / "
        f"causal_lm read; objective={spec.objective!r} reads data.task or data.mixture"
    )


def _check_eval_file(cfg: TrainConfig, spec: HeadSpec) -> None:
    """A head is scored on the file of eval.split; say which key to set when it is missing."""
    if spec.eval or spec.objective not in HEAD_OBJECTIVES:
        return
    split = cfg.eval.split
    other = "validation" if split == "test" else "test"
    if split in ("validation", "test") and getattr(cfg.data, other):
        raise ConfigError(
            f"eval.split={split} scores the model on data.{split}, which is not set; set it, or "
            f"eval.split={other} to score on data.{other}"
        )
    raise ConfigError(
        f"objective={spec.objective!r} scores the model on data.validation (eval.split=validation) or "
        "data.test (eval.split=test); set one of them"
    )


def _pretrained(cfg: TrainConfig) -> Any:
    """The model.checkpoint to start from (a run directory means its best, else last, checkpoint)."""
    if not cfg.model.checkpoint:
        return None
    from t2t.hub import from_pretrained

    return from_pretrained(resolve_checkpoint(cfg.model.checkpoint))


def resolve_checkpoint(path: str) -> str:
    """A run directory stands for its best checkpoint (or its last); any other path is itself."""
    from pathlib import Path

    for name in ("best", "last"):
        candidate = Path(path) / "checkpoints" / name
        if candidate.is_dir():
            return str(candidate.resolve())
    return path


def _base_config(cfg: TrainConfig) -> Any:
    from t2t.config import ModelConfig
    from t2t.presets import preset

    m = cfg.model
    if m.preset:
        return preset(m.preset)
    if m.config:
        return ModelConfig.load(m.config)
    raise ConfigError("model: give model.preset, model.config or model.checkpoint")


def _tokenizer(cfg: TrainConfig, arch: str) -> Any:
    from t2t.tokenizer import load_tokenizer

    source = cfg.model.tokenizer or (cfg.model.checkpoint and resolve_checkpoint(cfg.model.checkpoint))
    if source:
        return load_tokenizer(source)
    kind = "wordpiece" if arch == "encoder" else "bpe"
    return corpus_tokenizer(kind, cfg.model.tokenizer_vocab_size or 2000)


def _model(
    cfg: TrainConfig,
    spec: HeadSpec,
    tokenizer: Any,
    num_labels: int,
    names: list[str] | None,
    *,
    pretrained: Any = None,
) -> Any:
    """A preset (or config file) built for the tokenizer and the head, or a pre-trained directory moved
    under the objective's head (the backbone kept, the head new, as BERT and GPT fine-tune)."""
    from t2t.model.build import build_model, with_head

    head = head_of(spec.objective, spec.arch, spec.transform)
    head_fields: dict[str, Any] = {}
    if spec.objective in HEAD_OBJECTIVES:
        head_fields = {"num_labels": num_labels, "label_names": names}
        if "lm_loss_weight" in cfg.model.overrides:
            head_fields["lm_loss_weight"] = cfg.model.overrides["lm_loss_weight"]
    if pretrained is not None:
        _check_length(spec, pretrained.config.max_positions, f"{cfg.model.checkpoint}'s")
        if pretrained.config.task_head == head and pretrained.config.num_labels == num_labels:
            return pretrained
        return with_head(pretrained, head, **head_fields)
    base = _base_config(cfg)
    ids = {"pad_id": tokenizer.pad_id if tokenizer.pad_id is not None else tokenizer.eos_id or 0}
    if spec.arch == "decoder":
        ids.update(eos_id=tokenizer.eos_id, bos_id=tokenizer.eos_id)
    fields = {
        "vocab_size": tokenizer.model_vocab_size,
        "max_positions": max(base.max_positions, spec.max_length),
        "head": head,
        **ids,
        **head_fields,
    }
    config = base.replace(**{**fields, **cfg.model.overrides})  # the config's overrides win
    _check_length(spec, config.max_positions, "model.overrides'")
    return build_model(config)


def _check_save_format(cfg: TrainConfig, model: Any) -> None:
    """checkpoint.format=hf needs a transformers class for the model and its head; say so before training."""
    from t2t.interop.hf import family_for_config

    if cfg.checkpoint.format == "hf" and family_for_config(model.config) is None:
        raise ConfigError(
            f"checkpoint.format=hf: a {model.config.arch} with head={model.config.task_head!r} has no "
            "transformers class (BERT heads and GPT-2's lm / multiple-choice have); use checkpoint.format=t2t"
        )


def _check_length(spec: HeadSpec, max_positions: int, whose: str) -> None:
    if spec.max_length > max_positions:
        raise ConfigError(
            f"data.max_input_length={spec.max_length} is longer than {whose} max_positions={max_positions}; "
            f"use {max_positions} or less"
        )


def freeze_backbone(model: nn.Module) -> int:
    """Train only the task head (`classifier`, and BERT's `pooler`): the encoder's features stay as
    pre-trained. Returns the number of trainable parameters left."""
    trainable = 0
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.split(".")[0] in HEAD_MODULES
        trainable += parameter.numel() if parameter.requires_grad else 0
    if not trainable:
        raise ConfigError("model.freeze_encoder=true leaves nothing to train: the model has no task head")
    return trainable


@torch.no_grad()
def predict(model: nn.Module, features: Sequence[dict], batch_size: int) -> list[dict[str, torch.Tensor]]:
    """The head's outputs (logits, or start/end logits) of each feature, labels left out of the batch."""
    device = next(model.parameters()).device
    outputs: list[dict[str, torch.Tensor]] = []
    for start in range(0, len(features), batch_size):
        chunk = [
            {k: v for k, v in f.items() if k not in _LABEL_KEYS} for f in features[start : start + batch_size]
        ]
        batch = collate(chunk, model.config.pad_id)
        out = model(**{k: v.to(device) for k, v in batch.items()})
        keys = ["start_logits", "end_logits"] if out.start_logits is not None else ["logits"]
        for row in range(batch["input_ids"].shape[0]):
            outputs.append({k: getattr(out, k)[row].float().cpu() for k in keys})
    return outputs


def _score_head(model: nn.Module, *, data: Prepared, spec: HeadSpec, batch_size: int) -> dict[str, float]:
    predictions = data.decode(predict(model, data.test, batch_size))
    return score(spec.metric_names, predictions, data.references)


def _score_corpus(model: nn.Module, *, features: list[dict], batch_size: int) -> dict[str, float]:
    device = next(model.parameters()).device
    return held_out_scores(model, features, model.config.pad_id, batch_size, device)
