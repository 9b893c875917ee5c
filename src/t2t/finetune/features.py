"""Examples -> model inputs, one dict of int lists per feature, for each task and family.

BERT: [CLS] A [SEP] (B [SEP]) with token types 0 / 1; multiple choice one such pair per candidate;
tagging labels on first sub-words (conll.py); span QA windows (squad.py). GPT: the input transformations
of gpt_inputs.py. Each `Prepared` also says how the per-feature model outputs become one prediction per
test example (`decode`) and what those predictions are scored against (`references`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from t2t.errors import ConfigError
from t2t.finetune import conll, formats, squad
from t2t.finetune.builtin import builtin_path
from t2t.finetune.gpt_inputs import GptInputs
from t2t.finetune.spec import HeadSpec
from t2t.tokenizer import Tokenizer

Feature = dict[str, list | int | float]
Outputs = dict[str, torch.Tensor]  # one feature's outputs: logits, or start_logits / end_logits


@dataclass
class Prepared:
    train: list[Feature]
    test: list[Feature]
    references: list  # one per test example
    decode: Callable[[list[Outputs]], list]  # outputs of every test feature -> one prediction per example
    num_labels: int = 1
    label_names: list[str] | None = None


def _limit(items: list, limit: int | None) -> list:
    return items if limit is None else items[:limit]


def prepare(spec: HeadSpec, tokenizer: Tokenizer) -> Prepared:
    """Read the train and evaluation files and build the features of the objective and family."""
    builders = {
        "classification": _sentences,
        "regression": _sentences,
        "multiple_choice": _choices,
        "tagging": _tagging,
        "span_qa": _span_qa,
    }
    if spec.objective not in builders:
        raise ConfigError(
            f"objective={spec.objective!r} has no head features; t2t.finetune.pretrain builds it"
        )
    return builders[spec.objective](spec, tokenizer)


def _paths(spec: HeadSpec) -> tuple:
    if not spec.eval:
        raise ConfigError(
            "the head is scored on data.test (or data.validation, as eval.split says), which is empty; "
            "name the file to score on"
        )
    return builtin_path(spec.train), builtin_path(spec.eval)


# ---- sentences and pairs: classification, regression ---------------------------------------------------
def _sentences(spec: HeadSpec, tokenizer: Tokenizer) -> Prepared:
    d, regression = spec, spec.objective == "regression"
    train_path, test_path = _paths(spec)
    train, names = formats.load_text_examples(
        train_path, d.text_field, d.pair_field, d.label_field, regression=regression
    )
    test, _ = formats.load_text_examples(
        test_path, d.text_field, d.pair_field, d.label_field, label_names=names, regression=regression
    )
    train, test = _limit(train, d.limit_train), _limit(test, d.limit_eval)
    encode = _gpt_sentence(spec, tokenizer) if spec.family == "gpt" else _bert_sentence(spec, tokenizer)
    if regression:
        return Prepared(
            [encode(e) for e in train],
            [encode(e) for e in test],
            [e.label for e in test],
            lambda outputs: [float(o["logits"].reshape(-1)[0]) for o in outputs],
        )
    return Prepared(
        [encode(e) for e in train],
        [encode(e) for e in test],
        [names[int(e.label)] for e in test],
        lambda outputs: [names[int(o["logits"].argmax())] for o in outputs],
        num_labels=len(names),
        label_names=names,
    )


def _bert_sentence(spec: HeadSpec, tokenizer: Tokenizer) -> Callable[[formats.TextExample], Feature]:
    def encode(example: formats.TextExample) -> Feature:
        if example.pair is None:
            ids = tokenizer.encode(example.text, max_length=spec.max_length)
            return {"input_ids": ids, "token_type_ids": [0] * len(ids), "labels": example.label}
        pair = tokenizer.encode_pair(example.text, example.pair, max_length=spec.max_length)
        return {"input_ids": pair.ids, "token_type_ids": pair.token_type_ids, "labels": example.label}

    return encode


def _gpt_sentence(spec: HeadSpec, tokenizer: Tokenizer) -> Callable[[formats.TextExample], Feature]:
    inputs, transform = GptInputs(tokenizer, spec.max_length), spec.transform
    if transform != "classification" and spec.pair_field is None:
        raise ConfigError(f"transform={transform!r} needs sentence pairs; set data.pair_field")

    def encode(example: formats.TextExample) -> Feature:
        if transform == "similarity":
            return {"input_ids": inputs.similarity(example.text, example.pair), "labels": example.label}
        if transform == "entailment":
            return {"input_ids": inputs.entailment(example.text, example.pair), "labels": example.label}
        return {"input_ids": inputs.classification(example.text), "labels": example.label}

    return encode


# ---- multiple choice --------------------------------------------------------------------------------------
def _choices(spec: HeadSpec, tokenizer: Tokenizer) -> Prepared:
    d = spec
    train_path, test_path = _paths(spec)
    fields = (d.text_field, d.pair_field or "endings", d.label_field)
    train = _limit(formats.load_choice_examples(train_path, *fields), d.limit_train)
    test = _limit(formats.load_choice_examples(test_path, *fields), d.limit_eval)
    if spec.family == "gpt":
        inputs = GptInputs(tokenizer, spec.max_length)

        def encode(e: formats.ChoiceExample) -> Feature:
            return {"input_ids": inputs.multiple_choice(e.context, e.endings), "labels": e.label}
    else:

        def encode(e: formats.ChoiceExample) -> Feature:
            pairs = tokenizer.encode_pair_batch(
                [(e.context, x) for x in e.endings], max_length=spec.max_length
            )
            return {
                "input_ids": [p.ids for p in pairs],
                "token_type_ids": [p.token_type_ids for p in pairs],
                "labels": e.label,
            }

    return Prepared(
        [encode(e) for e in train],
        [encode(e) for e in test],
        [str(e.label) for e in test],
        lambda outputs: [str(int(o["logits"].argmax())) for o in outputs],
    )


# ---- token tagging ----------------------------------------------------------------------------------------
def _tagging(spec: HeadSpec, tokenizer: Tokenizer) -> Prepared:
    train_path, test_path = _paths(spec)
    train = _limit(conll.read_conll(train_path), spec.limit_train)
    test = _limit(conll.read_conll(test_path), spec.limit_eval)
    names = conll.tag_names_of([*train, *test])  # the tag set is known up front, as CoNLL's is
    ids = {t: i for i, t in enumerate(names)}

    def encode(sentence: conll.TaggedSentence) -> Feature:
        features = conll.first_subtoken_features(tokenizer, sentence, ids, spec.max_length)
        features.pop("word_starts")
        return features

    starts = [conll.first_subtoken_features(tokenizer, s, ids, spec.max_length)["word_starts"] for s in test]

    def decode(outputs: list[Outputs]) -> list[list[str]]:
        return [conll.word_tags(o["logits"], w, names) for o, w in zip(outputs, starts)]

    return Prepared(
        [encode(s) for s in train],
        [encode(s) for s in test],
        [s.tags for s in test],
        decode,
        num_labels=len(names),
        label_names=names,
    )


# ---- span question answering ------------------------------------------------------------------------------
def _span_qa(spec: HeadSpec, tokenizer: Tokenizer) -> Prepared:
    train_path, test_path = _paths(spec)
    train = _limit(squad.read_squad(train_path), spec.limit_train)
    test = _limit(squad.read_squad(test_path), spec.limit_eval)
    options = dict(
        max_length=spec.max_length,
        doc_stride=spec.options.get("doc_stride", 64),
        max_query_length=spec.options.get("max_query_length", 32),
    )
    train_features = squad.squad_features(tokenizer, train, **options)
    test_features = squad.squad_features(tokenizer, test, **options)

    def decode(outputs: list[Outputs]) -> list[str]:
        starts = [o["start_logits"] for o in outputs]
        ends = [o["end_logits"] for o in outputs]
        return squad.best_answers(test, test_features, starts, ends)

    return Prepared(
        [f.model_inputs() for f in train_features],
        [f.model_inputs() for f in test_features],
        [[text for text, _ in e.answers] for e in test],
        decode,
        num_labels=2,  # start and end: transformers' BertForQuestionAnswering sizes its head by num_labels
    )
