"""Text in, text out: a model and its tokenizer behind one call.

    pipe = load_pipeline("ckpt/")                       # model + tokenizer files side by side
    pipe("translate English to German: house")          # -> str
    pipe(prompts, batch_size=16)                        # -> list[str], in the order given
    for piece in pipe.stream("summarize: ..."):         # text as it is generated
        print(piece, end="", flush=True)

Batches are formed from prompts of similar length (sorted by token count), so little compute goes to
padding; answers come back in input order. Generation options (GenerationConfig fields) can be given
when the pipeline is built, as defaults, and per call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from t2t.errors import T2TError
from t2t.generation.config import DEFAULT_MAX_NEW_TOKENS, GenerationConfig
from t2t.generation.inputs import check_model
from t2t.generation.search import generate, model_defaults, resolve_config, stream_tokens
from t2t.generation.text import TokenizerLike, encode_prompts, pad_rows
from t2t.model.models import EncoderDecoderLM, T2TModel


class _PrefixStream:
    """Streaming text for tokenizers without `decode_stream`: decode everything so far and emit what is
    new, holding back while the text ends in an incomplete character (U+FFFD)."""

    def __init__(self, tokenizer: TokenizerLike) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.emitted = ""

    def step(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd") or not text.startswith(self.emitted):
            return ""
        new, self.emitted = text[len(self.emitted) :], text
        return new


class Pipeline:
    """Generate text from text with `model` and `tokenizer`; keyword arguments are generation defaults."""

    def __init__(
        self,
        model: T2TModel,
        tokenizer: TokenizerLike,
        *,
        device: str | torch.device | None = None,
        truncate: bool = True,
        batch_size: int = 8,
        **generation: Any,
    ) -> None:
        self.model = check_model(model)
        if device is not None:
            self.model.to(torch.device(device))
        self.tokenizer = tokenizer
        self.truncate = truncate
        self.batch_size = batch_size
        self.generation_defaults = dict(generation)  # over the model's own (model.generation_config)
        self.config = resolve_config(self.model, None, **generation)

    def save_pretrained(
        self, directory: str | Path, *, format: str = "auto", max_shard_size: int | str | None = None
    ) -> Path:
        """Write the model and its tokenizer side by side, so that `load_pipeline(directory)` and `t2t
        generate --model directory` take the directory as it is; the pipeline's generation defaults go
        into generation_config.json (over the model's own). format and max_shard_size: as
        `model.save_pretrained`."""
        from t2t.hub import save_pretrained

        save = getattr(self.tokenizer, "save_pretrained", None)
        if save is None:
            raise T2TError(
                f"the pipeline's tokenizer ({type(self.tokenizer).__name__}) cannot be saved: it has no "
                "save_pretrained; use a t2t Tokenizer"
            )
        defaults = GenerationConfig.from_dict(
            {**model_defaults(self.model).to_dict(), **self.generation_defaults}
        )
        save_pretrained(
            self.model, directory, format=format, max_shard_size=max_shard_size, generation_config=defaults
        )
        save(directory)
        return Path(directory)

    # ---- pieces ---------------------------------------------------------------------------------------
    def encode(
        self, prompts: Sequence[str], config: GenerationConfig, labels: Sequence[str] | None = None
    ) -> list[list[int]]:
        """Token ids of the prompts, checked (empty, too long) against the model; labels name them in
        messages."""
        reserve = config.max_new_tokens or (DEFAULT_MAX_NEW_TOKENS if config.max_length is None else 1)
        return encode_prompts(
            self.model,
            self.tokenizer,
            prompts,
            max_new_tokens=reserve,
            truncate=self.truncate,
            labels=labels,
        )

    def answer_text(self, new_tokens: Sequence[int], config: GenerationConfig) -> str:
        """The text of one generated row, up to its end-of-sequence token."""
        ids = list(new_tokens)
        for i, token in enumerate(ids):
            if token in config.eos_ids:
                ids = ids[:i]
                break
        return self.tokenizer.decode(ids)

    def generate_batch(self, ids: list[list[int]], config: GenerationConfig) -> list[list[str]]:
        """One padded batch of encoded prompts -> num_return_sequences answers per prompt."""
        encoder_decoder = isinstance(self.model, EncoderDecoderLM)
        pad = config.pad_token_id if config.pad_token_id is not None else 0
        batch, mask = pad_rows(ids, pad, left=not encoder_decoder, device=self.model.device)
        sequences = generate(self.model, batch, mask, config)
        new = sequences[:, 1 if encoder_decoder else batch.shape[1] :].tolist()  # type: ignore[union-attr]
        per = config.num_return_sequences
        return [
            [self.answer_text(row, config) for row in new[i * per : (i + 1) * per]] for i in range(len(ids))
        ]

    # ---- the calls ------------------------------------------------------------------------------------
    def __call__(
        self,
        prompts: str | Sequence[str],
        *,
        batch_size: int | None = None,
        labels: Sequence[str] | None = None,
        progress: Any = None,
        **overrides: Any,
    ) -> Any:
        """A prompt -> its answer; a list -> a list of answers in the same order. With
        num_return_sequences=n > 1 each answer is a list of n strings. progress(k) is called after each
        batch with the number of prompts it held (for a progress bar)."""
        config = resolve_config(self.model, self.config, **overrides)
        single = isinstance(prompts, str)
        texts = [prompts] if single else list(prompts)  # type: ignore[list-item]
        ids = self.encode(texts, config, labels or (["prompt"] if single else None))
        size = batch_size or self.batch_size
        if size < 1:
            raise T2TError(f"batch_size={size} should be at least 1")
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        answers: list[list[str]] = [[] for _ in ids]
        for begin in range(0, len(order), size):
            chunk = order[begin : begin + size]
            for i, out in zip(chunk, self.generate_batch([ids[i] for i in chunk], config)):
                answers[i] = out
            if progress is not None:
                progress(len(chunk))
        results: list[Any] = [a if config.num_return_sequences > 1 else a[0] for a in answers]
        return results[0] if single else results

    def stream(self, prompt: str, *, label: str = "prompt", **overrides: Any) -> Iterator[str]:
        """Yield the answer's text as it is generated; the pieces join to what `pipe(prompt)` returns.

        Beam search settles its tokens only at the end, so with num_beams > 1 the answer comes in one piece.
        """
        config = resolve_config(self.model, self.config, **overrides)
        if config.num_beams > 1 or config.num_return_sequences > 1:
            yield self(prompt, **overrides)
            return
        (ids,) = self.encode([prompt], config, [label])
        make = getattr(self.tokenizer, "decode_stream", None)
        pieces = make() if make is not None else _PrefixStream(self.tokenizer)
        generated: list[int] = []
        emitted = ""
        for tokens in stream_tokens(self.model, [ids], None, config):
            token = int(tokens[0])
            if token in config.eos_ids:
                break
            generated.append(token)
            piece = pieces.step(token)
            if piece:
                emitted += piece
                yield piece
        final = self.answer_text(generated, config)
        if final != emitted and final.startswith(emitted):  # e.g. a character cut off at the length limit
            yield final[len(emitted) :]


def load_pipeline(
    directory: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    quantize: str | None = None,
    **options: Any,
) -> Pipeline:
    """The pipeline of a checkpoint directory that holds a model and its tokenizer side by side (as
    `Pipeline.save_pretrained` writes one). dtype: torch.float32 (default), torch.bfloat16,
    torch.float16, their names ("bfloat16", "bf16", ...) or "auto" (as the weights are stored).
    quantize: "int8-dynamic" (or "int8"), "int8-weight-only" or None (as saved): int8 linear layers,
    embedding and vocabulary projection (t2t.model.quantize; docs/generation.md, "Reduced precision")."""
    from t2t.hub import from_pretrained
    from t2t.tokenizer import load_tokenizer

    model = from_pretrained(directory, dtype=dtype, quantize=quantize)
    tokenizer = load_tokenizer(directory)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise T2TError(
            f"{directory}: the tokenizer has {tokenizer.vocab_size} tokens but the model only "
            f"{model.config.vocab_size} embeddings; they do not belong together"
        )
    return Pipeline(model, tokenizer, device=device, **options)  # type: ignore[arg-type]


__all__ = ["Pipeline", "load_pipeline"]
