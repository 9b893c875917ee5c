"""Fine-tuning heads on top of the shared stacks.

Encoder (BERT): sentence classification / regression on the pooled [CLS] output, token tagging and
span question answering on the token outputs, multiple choice (one sequence per candidate, one score
each, softmax over candidates). Each matches the transformers class of the same job
(BertForSequenceClassification, ...) so checkpoints load in both directions.

Decoder (GPT, Radford et al. 2018): a linear head on the hidden state of the extract token (the last
real token by default), plus the language-modelling loss on the same inputs as an auxiliary objective
weighted by `lm_loss_weight`. Similarity runs both orderings of a pair and adds their representations;
multiple choice scores one sequence per answer. The task-specific input transformations (start,
delimiter and extract tokens) are built by the data side.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from t2t.config import ModelConfig
from t2t.errors import T2TError
from t2t.model.dropout import Dropout
from t2t.model.heads import Pooler
from t2t.model.loss import IGNORE_INDEX, shift_for_next_token, token_cross_entropy
from t2t.model.models import T2TModel
from t2t.model.outputs import ModelOutput
from t2t.model.transformer import Stack


def _flatten_choices(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """[B, C, T] -> [B*C, T]: each candidate is its own sequence."""
    return None if tensor is None else tensor.reshape(-1, tensor.shape[-1])


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, regression: bool) -> torch.Tensor:
    if regression:
        return F.mse_loss(logits.squeeze(-1).float(), labels.float())
    return token_cross_entropy(logits, labels)


class EncoderTaskModel(T2TModel):
    """BERT with one task head. `classifier` is the head's linear layer whatever the task."""

    arch = "encoder"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        head = config.task_head
        self.encoder = Stack(config, n_layers=config.n_encoder_layers, causal=False, cross=False)
        pooled = head in ("classification", "regression", "multiple-choice")
        self.pooler = Pooler(config) if pooled else None
        self.dropout = Dropout(config.head_dropout)
        outputs = {"span-qa": 2, "multiple-choice": 1, "regression": 1}.get(head, config.num_labels)
        self.classifier = nn.Linear(config.d_model, outputs)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        *,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> ModelOutput:
        """Inputs [B, T], or [B, choices, T] for multiple choice. Labels: class ids [B] (float targets for
        regression), tag ids [B, T] with -100 ignored, or the index of the right choice [B]; span QA
        takes start_positions / end_positions [B] instead."""
        head = self.config.task_head
        choices = input_ids.shape[1] if head == "multiple-choice" else None
        if choices is not None and input_ids.dim() != 3:
            raise T2TError(
                f"head='multiple-choice' needs input_ids of shape [batch, choices, length], got {tuple(input_ids.shape)}"
            )
        hidden = self.encoder(
            self.embed(_flatten_choices(input_ids) if choices else input_ids),
            attention_mask=_flatten_choices(attention_mask) if choices else attention_mask,
            token_type_ids=_flatten_choices(token_type_ids) if choices else token_type_ids,
            position_ids=_flatten_choices(position_ids) if choices else position_ids,
        )
        if self.pooler is not None:
            logits = self.classifier(self.dropout(self.pooler(hidden)))
        else:
            logits = self.classifier(self.dropout(hidden))
        if head == "span-qa":
            start, end = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))
            return ModelOutput(
                start_logits=start,
                end_logits=end,
                loss=self._span_loss(start, end, start_positions, end_positions),
                last_hidden_state=hidden,
            )
        if choices is not None:
            logits = logits.view(-1, choices)
        loss = None
        if labels is not None:
            loss = classification_loss(logits, labels, regression=head == "regression")
        return ModelOutput(logits=logits, loss=loss, last_hidden_state=hidden)

    @staticmethod
    def _span_loss(
        start: torch.Tensor, end: torch.Tensor, start_pos: torch.Tensor | None, end_pos: torch.Tensor | None
    ) -> torch.Tensor | None:
        """Mean of the start and end cross-entropies; positions outside the input are ignored (as BERT's
        reference does for answers cut off by the sliding window)."""
        if start_pos is None or end_pos is None:
            return None
        outside = start.shape[1]
        start_pos, end_pos = start_pos.clamp(0, outside), end_pos.clamp(0, outside)
        start_loss = F.cross_entropy(start.float(), start_pos, ignore_index=outside)
        end_loss = F.cross_entropy(end.float(), end_pos, ignore_index=outside)
        return (start_loss + end_loss) / 2


class DecoderTaskModel(T2TModel):
    """GPT fine-tuning: a linear head on the extract token plus the auxiliary language-model loss."""

    arch = "decoder"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        head = config.task_head
        self.decoder = Stack(config, n_layers=config.n_decoder_layers, causal=True, cross=False)
        self.lm_head = (
            None if config.tie_embeddings else nn.Linear(config.d_model, config.vocab_size, bias=False)
        )
        self.dropout = Dropout(config.head_dropout)
        outputs = 1 if head in ("multiple-choice", "regression") else config.num_labels
        self.classifier = nn.Linear(config.d_model, outputs)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        *,
        extract_positions: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> ModelOutput:
        """Inputs [B, T] (classification, regression) or [B, K, T] (similarity: K=2 orderings; multiple
        choice: K candidates). extract_positions: index of the extract token per sequence ([B] or
        [B, K]); default: the last real token. With labels, loss = task loss + lm_loss_weight * LM loss."""
        head = self.config.task_head
        grouped = head in ("similarity", "multiple-choice")
        if grouped and input_ids.dim() != 3:
            raise T2TError(
                f"head={head!r} needs input_ids of shape [batch, sequences, length], got {tuple(input_ids.shape)}"
            )
        groups = input_ids.shape[1] if grouped else 1
        ids = input_ids.reshape(-1, input_ids.shape[-1])
        mask = _flatten_choices(attention_mask)
        hidden = self.decoder(
            self.embed(ids), attention_mask=mask, position_ids=_flatten_choices(position_ids)
        )
        if extract_positions is None:
            last = ids.shape[1] - 1
            extract = (
                mask.sum(-1) - 1 if mask is not None else torch.full((ids.shape[0],), last, device=ids.device)
            )
        else:
            extract = extract_positions.reshape(-1)
        features = self.dropout(hidden[torch.arange(ids.shape[0], device=ids.device), extract])
        if head == "similarity":
            features = features.view(-1, groups, features.shape[-1]).sum(1)
        logits = self.classifier(features)
        if head == "multiple-choice":
            logits = logits.view(-1, groups)
        loss = None
        if labels is not None:
            loss = classification_loss(logits, labels, regression=head == "regression")
            if self.config.lm_loss_weight > 0:
                lm_labels = ids if mask is None else ids.masked_fill(mask == 0, IGNORE_INDEX)
                lm_logits = self._vocab_logits(hidden, self.lm_head)
                lm_loss = token_cross_entropy(*shift_for_next_token(lm_logits, lm_labels))
                loss = loss + self.config.lm_loss_weight * lm_loss
        return ModelOutput(logits=logits, loss=loss, last_hidden_state=hidden)
