"""The three architectures, each a thin composition of the shared Stack:

- EncoderDecoderLM: T5 / T5 v1.1 / Flan-T5 / mT5 (T5ForConditionalGeneration)
- EncoderModel:     BERT with pooler, masked-LM and next-sentence heads (BertForPreTraining)
- DecoderLM:        GPT-2 and Llama (GPT2LMHeadModel, LlamaForCausalLM)

Forward arguments and outputs follow Hugging Face transformers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from t2t.config import GenerationConfig, ModelConfig
from t2t.errors import ConfigError, T2TError
from t2t.model.cache import KVCache
from t2t.model.heads import MaskedLMHead, Pooler
from t2t.model.init import init_weights
from t2t.model.loss import IGNORE_INDEX, shift_for_next_token, token_cross_entropy
from t2t.model.outputs import ModelOutput
from t2t.model.transformer import Stack
from t2t.utils import delegates


class T2TModel(nn.Module):
    """Base of every t2t model: config, init, parameter counts, save/load."""

    arch: str = ""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.arch != self.arch:
            raise ConfigError(f"{type(self).__name__} needs arch={self.arch!r}, got arch={config.arch!r}")
        self.config = config
        # Defaults of generate() (transformers' model.generation_config): from_pretrained reads a
        # checkpoint's generation_config.json into it, save_pretrained writes it when it is not the default.
        self.generation_config = GenerationConfig()
        self.embed = nn.Embedding(config.vocab_size, config.d_model)

    def init_weights(self) -> None:
        init_weights(self, self.config)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Parameters counted once each (a tied LM head shares the embedding), as HF counts them."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def save_pretrained(
        self, directory: str | Path, format: str = "auto", *, max_shard_size: int | str | None = None
    ) -> Path:
        """Write a checkpoint directory. format: 'hf' (transformers loads it), 't2t', or 'auto' (hf when
        the architecture has a transformers equivalent). max_shard_size ("5GB", "500MB" or bytes): split
        the weights into shards of at most that size with an index, as transformers does."""
        return delegates.call(
            "save_pretrained", self, directory, format=format, max_shard_size=max_shard_size
        )

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, **kwargs: Any) -> T2TModel:
        model = delegates.call("from_pretrained", name_or_path, **kwargs)
        if cls is not T2TModel and not isinstance(model, cls):
            raise T2TError(f"{name_or_path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.weight.dtype

    def generate(self, input_ids: Any | None = None, attention_mask: Any | None = None, **kwargs: Any) -> Any:
        """Greedy, sampling or beam search with transformers' argument names (`inputs=` too, and
        `generation_config=`); see t2t.generation.generate."""
        return delegates.call("generate", self, input_ids, attention_mask, **kwargs)

    def score(
        self, input_ids: Any, candidate_ids: Any, attention_mask: Any | None = None, **kwargs: Any
    ) -> Any:
        """Log-likelihood of each candidate target given its input; see t2t.generation.score."""
        return delegates.call("score", self, input_ids, candidate_ids, attention_mask, **kwargs)

    def _vocab_logits(self, hidden: torch.Tensor, head: nn.Linear | None) -> torch.Tensor:
        if head is not None:
            return head(hidden)
        if self.config.scale_tied_logits:
            hidden = hidden * self.config.d_model**-0.5
        return F.linear(hidden, self.embed.weight)


class EncoderDecoderLM(T2TModel):
    arch = "encoder-decoder"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.encoder = Stack(config, n_layers=config.n_encoder_layers, causal=False, cross=False)
        self.decoder = Stack(config, n_layers=config.n_decoder_layers, causal=True, cross=True)
        self.lm_head = (
            None if config.tie_embeddings else nn.Linear(config.d_model, config.vocab_size, bias=False)
        )

    def shift_right(self, labels: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: decoder inputs are the targets shifted right, starting with decoder_start_id."""
        start = self.config.decoder_start_id
        assert start is not None
        shifted = labels.new_full(labels.shape, start)
        shifted[:, 1:] = labels[:, :-1]
        return shifted.masked_fill(shifted == IGNORE_INDEX, self.config.pad_id)

    def new_cache(self, capacity: int = 0) -> KVCache:
        return self.decoder.new_cache(capacity)

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.encoder(
            self.embed(input_ids),
            attention_mask=attention_mask,
            position_ids=position_ids,
            segment_ids=segment_ids,
        )

    def decode(
        self,
        decoder_input_ids: torch.Tensor,
        memory: torch.Tensor | None,
        memory_mask: torch.Tensor | None = None,
        *,
        decoder_attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
        memory_segment_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder hidden states and vocabulary logits. With a cache, `memory` is needed on the first
        step only (its keys/values are cached), `memory_mask` on every step."""
        hidden = self.decoder(
            self.embed(decoder_input_ids),
            attention_mask=decoder_attention_mask,
            position_ids=position_ids,
            segment_ids=segment_ids,
            memory=memory,
            memory_mask=memory_mask,
            memory_segment_ids=memory_segment_ids,
            cache=cache,
        )
        return hidden, self._vocab_logits(hidden, self.lm_head)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        *,
        encoder_outputs: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        decoder_position_ids: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
        decoder_segment_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> ModelOutput:
        if encoder_outputs is None:
            if input_ids is None:
                raise T2TError("EncoderDecoderLM.forward needs input_ids or encoder_outputs")
            encoder_outputs = self.encode(
                input_ids, attention_mask, position_ids=position_ids, segment_ids=segment_ids
            )
        if decoder_input_ids is None:
            if labels is None:
                raise T2TError("EncoderDecoderLM.forward needs decoder_input_ids or labels")
            decoder_input_ids = self.shift_right(labels)
        hidden, logits = self.decode(
            decoder_input_ids,
            encoder_outputs,
            attention_mask,
            decoder_attention_mask=decoder_attention_mask,
            position_ids=decoder_position_ids,
            segment_ids=decoder_segment_ids,
            memory_segment_ids=segment_ids,
            cache=cache,
        )
        loss = token_cross_entropy(logits, labels) if labels is not None else None
        return ModelOutput(
            logits=logits,
            loss=loss,
            last_hidden_state=hidden,
            encoder_last_hidden_state=encoder_outputs,
            cache=cache,
        )


class EncoderModel(T2TModel):
    """BERT: encoder stack plus pooler, masked-LM head (tied to the embeddings) and next-sentence head."""

    arch = "encoder"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.encoder = Stack(config, n_layers=config.n_encoder_layers, causal=False, cross=False)
        self.pooler = Pooler(config)
        self.mlm = MaskedLMHead(config)
        self.nsp = nn.Linear(config.d_model, 2)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        next_sentence_label: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
    ) -> ModelOutput:
        hidden = self.encoder(
            self.embed(input_ids),
            attention_mask=attention_mask,
            position_ids=position_ids,
            token_type_ids=token_type_ids,
            segment_ids=segment_ids,
        )
        pooled = self.pooler(hidden)
        logits = self.mlm(hidden, self.embed.weight)
        nsp_logits = self.nsp(pooled)
        loss = None
        if labels is not None:
            loss = token_cross_entropy(logits, labels)
        if next_sentence_label is not None:
            nsp_loss = token_cross_entropy(nsp_logits, next_sentence_label)
            loss = nsp_loss if loss is None else loss + nsp_loss
        return ModelOutput(
            logits=logits, loss=loss, last_hidden_state=hidden, pooled_output=pooled, nsp_logits=nsp_logits
        )


class DecoderLM(T2TModel):
    """GPT-2 / Llama: a causal stack and an LM head; the loss predicts each next token."""

    arch = "decoder"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.decoder = Stack(config, n_layers=config.n_decoder_layers, causal=True, cross=False)
        self.lm_head = (
            None if config.tie_embeddings else nn.Linear(config.d_model, config.vocab_size, bias=False)
        )

    def new_cache(self, capacity: int = 0) -> KVCache:
        return self.decoder.new_cache(capacity)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> ModelOutput:
        embeds = self.embed(input_ids)
        if token_type_ids is not None and self.decoder.token_types is None:
            # GPT-2 has no segment table: its token type ids are looked up in the token embeddings.
            embeds = embeds + self.embed(token_type_ids)
            token_type_ids = None
        hidden = self.decoder(
            embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            token_type_ids=token_type_ids,
            segment_ids=segment_ids,
            cache=cache,
        )
        logits = self._vocab_logits(hidden, self.lm_head)
        loss = token_cross_entropy(*shift_for_next_token(logits, labels)) if labels is not None else None
        return ModelOutput(logits=logits, loss=loss, last_hidden_state=hidden, cache=cache)
