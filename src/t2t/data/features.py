"""Example (text) -> pieces (token ids) for each objective and architecture.

Every example gets its own generator seeded from (seed, example index), so the pieces of example n are
the same whatever came before it (next-sentence negatives also depend on the documents kept to draw
them from, which go into the state): a stream resumes, and every DDP rank builds the same global batch.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, OrderedDict
from collections.abc import Mapping
from typing import Any

import torch

from t2t.configbase import check_choice, closest
from t2t.data import objectives as obj
from t2t.data.batching import IGNORE, Causal, Masked, Piece, Seq2Seq
from t2t.data.tasks import require_targets
from t2t.errors import ConfigError, DataError

OBJECTIVES = ("text2text", "span_corruption", "prefix_lm", "causal_lm", "mlm_nsp")
ARCHS = ("encoder-decoder", "decoder", "encoder")
_VALID = {
    "encoder-decoder": ("text2text", "span_corruption", "prefix_lm"),
    "decoder": ("text2text", "span_corruption", "prefix_lm", "causal_lm"),
    "encoder": ("mlm_nsp",),
}
OPTIONS = {
    "span_corruption": {"noise_density": 0.15, "mean_noise_span_length": 3.0},
    "mlm_nsp": {"mlm_probability": 0.15, "nsp": True},
}
COMMON_OPTIONS = {"decoder_start_id": None}  # every objective: the encoder-decoder's first decoder input
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_POOL = 32  # different documents kept to draw next-sentence negatives from
_MAX_WAITING = 10_000  # documents held back while no other document has been seen
_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def example_generator(seed: int, index: int) -> torch.Generator:
    """Example `index`'s own generator: well-mixed seeds, so neighbouring examples draw unrelated noise."""
    return torch.Generator().manual_seed(_splitmix64(_splitmix64(seed) ^ index) >> 1)


def check_objective_options(objective: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The objective's options with their defaults filled in. An unknown name or a value out of range is
    a ConfigError here, before any data is read (TrainConfig checks `data.options` with this too)."""
    check_choice("objective", objective, OBJECTIVES)
    allowed = {**OPTIONS.get(objective, {}), **COMMON_OPTIONS}
    for key in options:
        if key not in allowed:
            raise ConfigError(
                f"unknown option {key!r} for objective={objective!r}{closest(str(key), allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )
    merged = {**allowed, **options}
    if objective == "span_corruption":
        obj.check_span_options(merged["noise_density"], merged["mean_noise_span_length"])
    if objective == "mlm_nsp":
        obj.check_mlm_probability(merged["mlm_probability"])
        if not isinstance(merged["nsp"], bool):
            raise ConfigError(f"nsp={merged['nsp']!r} should be true or false")
    start = merged["decoder_start_id"]
    if start is not None and (isinstance(start, bool) or not isinstance(start, int) or start < 0):
        raise ConfigError(f"decoder_start_id={start!r} should be a token id (an integer >= 0) or null")
    return merged


def pretraining_text(example: dict) -> str:
    text = example.get("text") or example.get("inputs")
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"an example has no text to pretrain on (fields: {', '.join(map(repr, example))})")
    return text


class Featurizer:
    """Tokenizes examples and applies the objective; counts truncations and chunks in `stats`."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        objective: str,
        arch: str,
        max_input_length: int,
        max_target_length: int,
        seed: int,
        **options: Any,
    ) -> None:
        check_choice("objective", objective, OBJECTIVES)
        check_choice("arch", arch, ARCHS)
        if objective not in _VALID[arch]:
            raise ConfigError(
                f"objective={objective!r} does not suit arch={arch!r}; use one of {', '.join(_VALID[arch])}"
            )
        self.options = check_objective_options(objective, options)
        self.tok = tokenizer
        self.objective, self.arch, self.seed = objective, arch, seed
        self.max_in, self.max_tgt = max_input_length, max_target_length
        self.stats: Counter[str] = Counter()
        self.pool: OrderedDict[str, list[list[int]]] = OrderedDict()  # document key -> its sentences
        self.waiting: list[int] = []  # indices of documents waiting for another document (NSP)
        self.eos = tokenizer.eos_id
        self.pad = tokenizer.pad_id if tokenizer.pad_id is not None else (self.eos or 0)
        self.decoder_start_id = self.options["decoder_start_id"]
        if self.decoder_start_id is None:
            self.decoder_start_id = self.pad
        rows = getattr(tokenizer, "model_vocab_size", None) or getattr(tokenizer, "vocab_size", None)
        if isinstance(rows, int) and self.decoder_start_id >= rows:
            raise ConfigError(
                f"decoder_start_id={self.decoder_start_id} is not a token id of this tokenizer "
                f"(it has {rows}); use an id below {rows}, or null for the pad id"
            )
        probe = tokenizer.encode("a")
        bare = tokenizer.encode("a", add_special_tokens=False)
        at = probe.index(bare[0]) if bare and bare[0] in probe else 0
        self.head, self.tail = probe[:at], probe[at + len(bare) :]
        self._check()

    def _check(self) -> None:
        if self.objective == "span_corruption":
            if not getattr(self.tok, "num_sentinels", 0):
                raise ConfigError(
                    "span corruption needs sentinel tokens <extra_id_N>; use a sentencepiece tokenizer with extra_ids"
                )
            density, mean = self.options["noise_density"], self.options["mean_noise_span_length"]
            self.tokens_length, _ = obj.span_corruption_lengths(self.max_in, density, mean)
            spans = obj.noise_spans(self.tokens_length, density, mean)
            if spans > self.tok.num_sentinels:
                raise ConfigError(
                    f"max_input_length={self.max_in} makes {spans} noise spans but the tokenizer has "
                    f"{self.tok.num_sentinels} sentinels; lower max_input_length"
                )
        if self.objective == "mlm_nsp" and self.tok.mask_id is None:
            raise ConfigError("mlm_nsp needs a [MASK] token; use a wordpiece (BERT) tokenizer")
        if self.objective == "causal_lm" and self.max_in < 2:
            raise ConfigError(f"max_input_length={self.max_in} is too short for causal LM")

    @property
    def limits(self) -> tuple[int, int]:
        """A packed row's (input, target) token limits."""
        if self.arch == "encoder-decoder":
            return self.max_in, self.max_tgt
        if self.arch == "decoder" and self.objective != "causal_lm":
            return self.max_in + self.max_tgt, 0
        return self.max_in, 0

    def state_dict(self) -> dict:
        return {
            "pool": [[key, doc] for key, doc in self.pool.items()],
            "waiting": list(self.waiting),
            "stats": dict(self.stats),
        }

    def load_state_dict(self, state: dict) -> None:
        if "waiting" in state:
            self.pool = OrderedDict((key, doc) for key, doc in state["pool"])
        else:  # a version-1 state: a plain list of the last documents
            self.pool = OrderedDict((_document_key(doc), doc) for doc in state["pool"][-_POOL:])
        self.waiting = list(state.get("waiting", []))
        self.stats = Counter(state["stats"])

    def finish(self) -> None:
        """The source has ended: no document may still wait for a negative (it does when all were one)."""
        if self.waiting:
            raise DataError(
                f"next-sentence prediction needs at least two different documents, but all {len(self.waiting)} "
                "documents of the source are the same text; add documents or pass nsp=False"
            )

    def __call__(self, example: dict, index: int) -> list[Piece]:
        self.stats["examples"] += 1
        generator = example_generator(self.seed, index)
        if self.objective == "text2text":
            return [self._text2text(example)]
        if self.objective == "mlm_nsp":
            return self._mlm_nsp(pretraining_text(example), index, generator)
        body = self.tok.encode(pretraining_text(example), add_special_tokens=False)
        if self.objective == "causal_lm":
            chunks = obj.causal_lm_chunks(body, self.max_in, eos_id=self.eos)
            self.stats["chunks"] += len(chunks)
            return [Causal(c.tolist(), c.tolist()) for c in chunks]
        if self.objective == "span_corruption":
            pieces = [
                self._span(body[i : i + self.tokens_length], generator)
                for i in range(0, len(body), self.tokens_length)
            ]
        else:
            pieces = self._prefix_lm(body, generator)
        self.stats["chunks"] += len(pieces)
        return pieces if self.arch == "encoder-decoder" else [as_causal(p) for p in pieces]

    def _cut(self, ids: list[int], limit: int, keep_last: bool, counter: str) -> list[int]:
        """Truncate to `limit` keeping the tokenizer's special tokens around the text (counted)."""
        if len(ids) <= limit:
            return ids
        self.stats[counter] += 1
        head = ids[: len(self.head)] if ids[: len(self.head)] == self.head else []
        tail = ids[len(ids) - len(self.tail) :] if self.tail and ids[-len(self.tail) :] == self.tail else []
        middle = ids[len(head) : len(ids) - len(tail)]
        room = max(limit - len(head) - len(tail), 0)
        middle = middle[len(middle) - room :] if keep_last else middle[:room]
        return head + middle + tail

    def _target_ids(self, text: str, special: bool) -> list[int]:
        ids = self.tok.encode(text, add_special_tokens=special)
        if self.eos is not None and (not ids or ids[-1] != self.eos):
            ids.append(self.eos)
        return ids

    def _text2text(self, example: dict) -> Piece:
        require_targets(example, "objective='text2text'")
        inputs, targets = example["inputs"], example["targets"]
        if self.arch == "encoder-decoder":
            source = self._cut(self.tok.encode(inputs), self.max_in, False, "truncated_inputs")
            target = self._cut(self._target_ids(targets, True), self.max_tgt, False, "truncated_targets")
            return Seq2Seq(source, target)
        prompt = self._cut(self.tok.encode(inputs), self.max_in, True, "truncated_inputs")
        target = self._target_ids(targets, False)
        if len(target) > self.max_tgt:
            self.stats["truncated_targets"] += 1
            target = target[: self.max_tgt - 1] + target[-1:]
        return as_causal(Seq2Seq(prompt, target))

    def _span(self, tokens: list[int], generator: torch.Generator) -> Seq2Seq:
        inputs, targets = obj.span_corruption(
            tokens,
            noise_density=self.options["noise_density"],
            mean_noise_span_length=self.options["mean_noise_span_length"],
            sentinel_start_id=self.tok.sentinel_id(0),
            eos_id=self.eos,
            generator=generator,
        )
        return Seq2Seq(inputs.tolist(), targets.tolist())

    def _prefix_lm(self, body: list[int], generator: torch.Generator) -> list[Piece]:
        room_in, room_tgt = self.max_in - 1, self.max_tgt - 1
        step = room_in + room_tgt
        pieces: list[Piece] = []
        for i in range(0, len(body), step):
            chunk = body[i : i + step]
            if len(chunk) < 2:
                continue
            inputs, targets = obj.prefix_lm(
                chunk, eos_id=self.eos, generator=generator, max_inputs=room_in, max_targets=room_tgt
            )
            pieces.append(Seq2Seq(inputs.tolist(), targets.tolist()))
        return pieces

    def _sentences(self, text: str) -> list[list[int]]:
        lines = [s for s in text.split("\n") if s.strip()]
        if len(lines) == 1:
            lines = [s for s in _SENTENCE_END.split(lines[0]) if s.strip()]
        encoded = self.tok.encode_batch(lines, add_special_tokens=False) if lines else []
        return [ids for ids in encoded if ids]

    def _mlm_nsp(self, text: str, index: int, generator: torch.Generator) -> list[Piece]:
        sentences = self._sentences(text)
        if not sentences:
            return []
        if not self.options["nsp"]:
            cls, sep = self.tok.cls_id, self.tok.sep_id
            body = [t for s in sentences for t in s]
            size = self.max_in - 2
            chunks = [body[i : i + size] for i in range(0, len(body), size)]
            self.stats["chunks"] += len(chunks)
            return [self._masked([cls, *c, sep], [0] * (len(c) + 2), -1, generator) for c in chunks]
        key = _document_key(sentences)
        self.pool[key] = sentences  # the most recent documents, each once, for the negatives of others
        self.pool.move_to_end(key)
        if len(self.pool) > _POOL:
            self.pool.popitem(last=False)
        if len(self.pool) == 1:  # no other document yet: hold this one back until one comes
            self.waiting.append(index)
            if len(self.waiting) > _MAX_WAITING:
                raise DataError(
                    f"next-sentence prediction needs at least two different documents, but the first "
                    f"{len(self.waiting)} documents are all the same text; add documents or pass nsp=False"
                )
            return []
        waiting, self.waiting = self.waiting, []
        held = next(iter(self.pool))  # the waiting documents are all the first (oldest) document's text
        pieces = [p for i in waiting for p in self._nsp_pieces(self.pool[held], held, i)]
        return pieces + self._nsp_pieces(sentences, key, index)

    def _nsp_pieces(self, sentences: list[list[int]], key: str, index: int) -> list[Piece]:
        """Document `index`'s pairs; the negatives' B from one of the kept documents of another text."""
        generator = example_generator(self.seed, index)
        others = [doc for k, doc in self.pool.items() if k != key]

        def random_sentences() -> list[list[int]]:
            doc = others[int(torch.randint(len(others), (1,), generator=generator))]
            start = int(torch.randint(len(doc), (1,), generator=generator))
            return doc[start:]

        pairs = obj.next_sentence_pairs(
            sentences, random_sentences, max_tokens=self.max_in - 3, generator=generator
        )
        self.stats["pairs"] += len(pairs)
        cls, sep = self.tok.cls_id, self.tok.sep_id
        return [
            self._masked([cls, *a, sep, *b, sep], [0] * (len(a) + 2) + [1] * (len(b) + 1), label, generator)
            for a, b, label in pairs
        ]

    def _masked(self, ids: list[int], types: list[int], label: int, generator: torch.Generator) -> Masked:
        inputs, labels = obj.mask_tokens(
            ids,
            special_ids=self.tok.special_ids,
            mask_id=self.tok.mask_id,
            vocab_size=self.tok.vocab_size,
            generator=generator,
            mlm_probability=self.options["mlm_probability"],
        )
        return Masked(inputs.tolist(), types, labels.tolist(), label)


def _document_key(sentences: list[list[int]]) -> str:
    """A document's identity for next-sentence negatives: its tokens, so that a repeat of the same text
    (the next epoch of a small corpus, or a duplicate) never counts as another document."""
    digest = hashlib.blake2b(digest_size=16)
    for ids in sentences:
        digest.update(repr(ids).encode())
    return digest.hexdigest()


def as_causal(piece: Seq2Seq) -> Causal:
    """inputs + targets as one decoder sequence; the loss only on the targets."""
    return Causal([*piece.inputs, *piece.targets], [IGNORE] * len(piece.inputs) + list(piece.targets))
