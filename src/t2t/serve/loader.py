"""The model a server answers with: weights, tokenizer, and what the API needs to know about them.

Loading goes through t2t's own readers (`t2t.hub.from_pretrained`, `t2t.tokenizer.load_tokenizer`), so
a server takes exactly the directories `t2t generate` takes. Besides them it reads two small files that
Hugging Face checkpoints carry: the chat template (tokenizer_config.json's `chat_template`, or
chat_template.jinja) and generation_config.json's end-of-sequence ids (instruct models end a turn with
a token of their own, e.g. `<|im_end|>`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from t2t.errors import CheckpointError, T2TError
from t2t.generation.inputs import check_model
from t2t.hub import from_pretrained, resolve
from t2t.model.models import DecoderLM, EncoderDecoderLM
from t2t.model.quantize import quantization_of
from t2t.serve.settings import ServeSettings
from t2t.tokenizer.core import Tokenizer, load_tokenizer
from t2t.utils.devices import resolve_device

log = logging.getLogger("t2t.serve")
CHAT_TEMPLATE_FILE = "chat_template.jinja"


@dataclass
class ServedModel:
    """A loaded model with its tokenizer; `name` is what clients put in a request's `model` field."""

    name: str
    model: EncoderDecoderLM | DecoderLM
    tokenizer: Tokenizer
    eos_ids: list[int]
    chat_template: str | None = None
    special_tokens: dict[str, str] = field(default_factory=dict)  # bos_token, eos_token for templates
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def encoder_decoder(self) -> bool:
        return isinstance(self.model, EncoderDecoderLM)

    @property
    def max_positions(self) -> int:
        return self.model.config.max_positions

    def max_new_tokens(self, prompt_tokens: int) -> int:
        """The most tokens an answer may have: T5's decoder takes max_positions positions, a decoder-only
        model's context holds the prompt and the answer."""
        if self.encoder_decoder:
            return self.max_positions - 1
        return self.max_positions - prompt_tokens


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not readable JSON ({err})") from None
    return value if isinstance(value, dict) else {}


def _chat_template(directory: Path, tokenizer_config: dict[str, Any]) -> str | None:
    """transformers keeps the template in chat_template.jinja (newer) or tokenizer_config.json; a list of
    named templates has a "default" one."""
    file = directory / CHAT_TEMPLATE_FILE
    if file.is_file():
        return file.read_text(encoding="utf-8")
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) and template.strip() else None


def _token_text(value: Any) -> str:
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else ""


def _eos_ids(model: EncoderDecoderLM | DecoderLM, generation_config: dict[str, Any]) -> list[int]:
    eos = generation_config.get("eos_token_id")
    ids = [eos] if isinstance(eos, int) else eos if isinstance(eos, list) else []
    vocab = model.config.vocab_size
    ids = [i for i in ids if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < vocab]
    if not ids and model.config.eos_id is not None:
        ids = [model.config.eos_id]
    return ids


def load_served_model(settings: ServeSettings) -> ServedModel:
    """Read the checkpoint directory of `settings.model` onto its device, in its dtype and int8
    quantisation (a directory saved quantised loads as saved)."""
    started = time.perf_counter()
    directory = resolve(settings.model)
    device = resolve_device(settings.device)
    dtype = getattr(torch, settings.dtype)
    model = from_pretrained(directory, dtype=dtype, quantize=settings.quantize)
    model = check_model(model).to(device).eval()
    tokenizer = load_tokenizer(directory)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise T2TError(
            f"{directory}: the tokenizer has {tokenizer.vocab_size} tokens but the model only "
            f"{model.config.vocab_size} embeddings; they do not belong together"
        )
    tokenizer_config = _json(directory / "tokenizer_config.json")
    served = ServedModel(
        name=settings.served_model_name or Path(directory).resolve().name,
        model=model,
        tokenizer=tokenizer,
        eos_ids=_eos_ids(model, _json(directory / "generation_config.json")),
        chat_template=_chat_template(directory, tokenizer_config),
        special_tokens={
            key: _token_text(tokenizer_config.get(key)) for key in ("bos_token", "eos_token", "pad_token")
        },
    )
    log.info(
        "loaded %s (%s, %s parameters, %s%s on %s) in %.1f s%s",
        directory,
        model.config.arch,
        f"{model.num_parameters():,}",
        settings.dtype,
        f", {quantization_of(model)}" if quantization_of(model) else "",
        device,
        time.perf_counter() - started,
        ", with a chat template" if served.chat_template else "",
    )
    return served


__all__ = ["ServedModel", "load_served_model"]
