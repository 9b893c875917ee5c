"""Text data of the experiments: the quickstart's built-in tasks (a seeded share of each training split,
their mixture, the held-out examples), the built-in prose corpus, a sentencepiece vocabulary over both,
and the pretraining objectives of T5's comparison on the corpus at equal text per example.

The vocabulary is trained once per experiment (in the parent process) on the corpus and the five tasks'
training text, never on validation or test text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2t.data.batching import Seq2Seq, collate_seq2seq
from t2t.data.features import example_generator
from t2t.data.mixtures import Mixture
from t2t.data.objectives import mask_tokens, prefix_lm, span_corruption, span_corruption_lengths
from t2t.data.task_table import get_task
from t2t.data.tasks import Task
from t2t.errors import ConfigError
from t2t.experiments.indexed_stream import IndexedStream
from t2t.quickstart.tasks import QUICKSTART_TASKS, register_quickstart_tasks
from t2t.utils.io import atomic_write_text
from t2t.utils.resources import builtin_dir

CORPUS = builtin_dir() / "finetune" / "corpus" / "train.txt"


def tasks_named(names: Sequence[str]) -> list[Task]:
    register_quickstart_tasks()
    unknown = [n for n in names if n not in QUICKSTART_TASKS]
    if unknown:
        raise ConfigError(f"data.tasks: {unknown[0]!r} is not one of {', '.join(QUICKSTART_TASKS)}")
    return [get_task(n) for n in names]


# ------------------------------------------------------------------------------------------ vocabulary
def tokenizer_dir(work: Path, vocab_size: int, max_piece_length: int, lines: int | None = None) -> Path:
    return Path(work) / (f"tokenizer-{vocab_size}-{max_piece_length}" + (f"-{lines}" if lines else ""))


def train_vocabulary(work: Path, vocab_size: int, max_piece_length: int, lines: int | None = None) -> Path:
    """A sentencepiece vocabulary (T5's kind, sentinels included) over the corpus and every quickstart
    task's training text (the first `lines` of each when given: a quick vocabulary), saved in work/;
    reused when it is there."""
    import itertools

    from t2t.tokenizer import TokenizerConfig, train_tokenizer

    out = tokenizer_dir(work, vocab_size, max_piece_length, lines)
    if any(out.glob("*")):
        return out
    text_lines = corpus_lines("prose")[:lines]
    for task in tasks_named(QUICKSTART_TASKS):
        for example in itertools.islice(task.examples("train"), lines):
            text_lines += [example["inputs"], example["targets"]]
    text = Path(work) / f"{out.name}.txt"
    atomic_write_text(text, "\n".join(line for line in text_lines if line) + "\n")
    tokenizer = train_tokenizer(
        [text], TokenizerConfig(vocab_size=vocab_size, max_piece_length=max_piece_length)
    )
    tokenizer.save_pretrained(out)
    return out


# ------------------------------------------------------------------------------------------- tasks
def sample_indices(size: int, fraction: float, seed: int) -> list[int]:
    """A seeded share of range(size), at least one, in file order."""
    if fraction >= 1.0:
        return list(range(size))
    count = max(1, math.ceil(fraction * size))
    order = np.random.default_rng([seed, 7919]).permutation(size)
    return sorted(order[:count].tolist())


_WORD = re.compile(r"[^\W\d_]{3,}")


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def subset_task(
    task: Task, fraction: float, seed: int
) -> tuple[Task, list[dict[str, Any]], list[dict[str, Any]]]:
    """(the task with a seeded `fraction` of its training split, the training examples left out, and
    those of them whose target has no word (3+ letters) that occurs anywhere in the kept examples:
    answers never seen in fine-tuning). Validation and test are the task's own."""
    train = list(task.examples("train"))
    keep = sample_indices(len(train), fraction, seed)
    kept = [train[i] for i in keep]
    seen: set[str] = set()
    for example in kept:
        seen |= words(example["inputs"]) | words(example["targets"])
    chosen = set(keep)
    rest = [e for i, e in enumerate(train) if i not in chosen]
    unseen = [e for e in rest if words(e["targets"]) and not (words(e["targets"]) & seen)]

    def source(split: str) -> list[dict[str, Any]]:
        return kept if split == "train" else [dict(e) for e in task.examples(split)]

    sub = Task(
        task.name,
        source,
        metrics=task.metrics,
        postprocess=task.postprocess,
        splits=task.splits,
    )
    return sub, rest, unseen


def unseen_task(task: Task, examples: list[dict[str, Any]]) -> Task:
    """The left-out examples as a task of their own (scored on its `test` split)."""
    return Task(
        task.name,
        lambda split: examples,
        metrics=task.metrics,
        postprocess=task.postprocess,
        splits=("test",),
    )


def mixture_of(tasks: list[Task], mixing: str, cap: int | None, temperature: float) -> Task | Mixture:
    if len(tasks) == 1:
        return tasks[0]
    return Mixture("experiment", tasks, rate=mixing, cap=cap, temperature=temperature)


# ------------------------------------------------------------------------------------------ corpus
def corpus_lines(corpus: str) -> list[str]:
    """The built-in prose, a line each; with corpus=prose+inputs also every task's training inputs
    (without targets: unlabelled in-domain text)."""
    lines = [line.strip() for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    if corpus == "prose+inputs":
        for task in tasks_named(QUICKSTART_TASKS):
            lines += [e["inputs"] for e in task.examples("train")]
    return lines


def split_lines(lines: list[str], validation_share: float) -> tuple[list[str], list[str]]:
    """(train, validation): every k-th line (k = round(1 / share)) is held out, spread over the corpus."""
    k = max(2, round(1 / validation_share))
    return [x for i, x in enumerate(lines) if i % k], [x for i, x in enumerate(lines) if not i % k]


def corpus_task(lines_train: list[str], lines_validation: list[str]) -> Task:
    def source(split: str) -> list[dict[str, str]]:
        return [{"text": x} for x in (lines_train if split == "train" else lines_validation)]

    return Task("corpus", source, splits=("train", "validation"))


class CorpusObjectiveStream(IndexedStream):
    """Pretraining batches of an encoder-decoder on the corpus, by T5's objectives (section 3.3), all
    cut from the same text: the corpus is tokenized, concatenated and cut into chunks of the raw length
    that span corruption turns into `input_length` tokens; each objective makes one example of a chunk.

    span_corruption  inputs: the chunk with 15% of its tokens in spans replaced by sentinels; targets:
                     the sentinels and their spans (T5)
    bert_mlm         inputs: 15% of the tokens masked BERT's way (80% a mask token, here <extra_id_0>,
                     10% random, 10% kept); targets: the whole chunk (T5's BERT-style objective)
    prefix_lm        inputs: the chunk up to a random point; targets: the rest
    causal_lm        inputs: nothing (EOS); targets: the whole chunk (a language model in the decoder)

    Batch i is a function of (seed, i) alone."""

    def __init__(
        self,
        token_ids: list[int],
        tokenizer: Any,
        objective: str,
        *,
        batch_size: int,
        input_length: int,
        seed: int,
        noise_density: float = 0.15,
        mean_noise_span_length: float = 3.0,
    ) -> None:
        self.raw_length, _ = span_corruption_lengths(input_length, noise_density, mean_noise_span_length)
        self.chunks = len(token_ids) // self.raw_length
        if self.chunks < 1:
            raise ConfigError(
                f"the corpus has {len(token_ids)} tokens, fewer than one chunk of {self.raw_length}"
            )
        self.ids = torch.tensor(token_ids[: self.chunks * self.raw_length]).view(self.chunks, self.raw_length)
        self.tokenizer, self.objective = tokenizer, objective
        self.batch_size, self.seed = batch_size, seed
        self.noise_density, self.mean_span = noise_density, mean_noise_span_length
        self.position = 0

    def example(self, chunk: torch.Tensor, generator: torch.Generator) -> Seq2Seq:
        tok = self.tokenizer
        eos = tok.eos_id
        if self.objective == "span_corruption":
            inputs, targets = span_corruption(
                chunk,
                noise_density=self.noise_density,
                mean_noise_span_length=self.mean_span,
                sentinel_start_id=tok.sentinel_id(0),
                eos_id=eos,
                generator=generator,
            )
        elif self.objective == "bert_mlm":
            masked, _ = mask_tokens(
                chunk,
                special_ids=tok.special_ids,
                mask_id=tok.sentinel_id(0),
                vocab_size=tok.vocab_size,
                generator=generator,
                mlm_probability=self.noise_density,
            )
            inputs, targets = (
                torch.cat([masked, masked.new_tensor([eos])]),
                torch.cat([chunk, chunk.new_tensor([eos])]),
            )
        elif self.objective == "prefix_lm":
            inputs, targets = prefix_lm(chunk, eos_id=eos, generator=generator)
        elif self.objective == "causal_lm":
            inputs, targets = chunk.new_tensor([eos]), torch.cat([chunk, chunk.new_tensor([eos])])
        else:
            raise ConfigError(f"objective {self.objective!r} is not a corpus objective")
        return Seq2Seq(inputs.tolist(), targets.tolist())

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        picks = torch.randint(0, self.chunks, (self.batch_size,), generator=g).tolist()
        rows = [
            [self.example(self.ids[c], example_generator(self.seed, index * self.batch_size + k))]
            for k, c in enumerate(picks)
        ]
        tok = self.tokenizer
        return collate_seq2seq(rows, pad_id=tok.pad_id, decoder_start_id=tok.pad_id, packed=False)


def corpus_token_ids(lines: list[str], tokenizer: Any) -> list[int]:
    """The lines tokenized and concatenated, each followed by EOS (T5 concatenates documents so)."""
    ids: list[int] = []
    for row in tokenizer.encode_batch(lines):
        ids += row  # T5's encode appends EOS
    return ids
