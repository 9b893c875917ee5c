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
from t2t.finetune.recipe import RecipeConfig
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


def prepare(recipe: RecipeConfig, tokenizer: Tokenizer) -> Prepared:
    """Read the recipe's train and test files and build the features of its task and family."""
    builders = {
        "classification": _sentences,
        "regression": _sentences,
        "multiple-choice": _choices,
        "tagging": _tagging,
        "span-qa": _span_qa,
    }
    if recipe.task not in builders:
        raise ConfigError(f"task={recipe.task!r} is a pretraining task; t2t.finetune.pretrain handles it")
    return builders[recipe.task](recipe, tokenizer)


def _paths(recipe: RecipeConfig) -> tuple:
    if not recipe.data.test:
        raise ConfigError(f"recipe {recipe.name!r}: data.test is empty; name the file to score on")
    return builtin_path(recipe.data.train), builtin_path(recipe.data.test)


# ---- sentences and pairs: classification, regression ---------------------------------------------------
def _sentences(recipe: RecipeConfig, tokenizer: Tokenizer) -> Prepared:
    d, regression = recipe.data, recipe.task == "regression"
    train_path, test_path = _paths(recipe)
    train, names = formats.load_text_examples(
        train_path, d.text_field, d.pair_field, d.label_field, regression=regression
    )
    test, _ = formats.load_text_examples(
        test_path, d.text_field, d.pair_field, d.label_field, label_names=names, regression=regression
    )
    train, test = _limit(train, d.limit_train), _limit(test, d.limit_test)
    encode = _gpt_sentence(recipe, tokenizer) if recipe.family == "gpt" else _bert_sentence(recipe, tokenizer)
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


def _bert_sentence(recipe: RecipeConfig, tokenizer: Tokenizer) -> Callable[[formats.TextExample], Feature]:
    def encode(example: formats.TextExample) -> Feature:
        if example.pair is None:
            ids = tokenizer.encode(example.text, max_length=recipe.max_length)
            return {"input_ids": ids, "token_type_ids": [0] * len(ids), "labels": example.label}
        pair = tokenizer.encode_pair(example.text, example.pair, max_length=recipe.max_length)
        return {"input_ids": pair.ids, "token_type_ids": pair.token_type_ids, "labels": example.label}

    return encode


def _gpt_sentence(recipe: RecipeConfig, tokenizer: Tokenizer) -> Callable[[formats.TextExample], Feature]:
    inputs, transform = GptInputs(tokenizer, recipe.max_length), recipe.gpt_transform
    if transform != "classification" and recipe.data.pair_field is None:
        raise ConfigError(f"transform={transform!r} needs sentence pairs; set data.pair_field")

    def encode(example: formats.TextExample) -> Feature:
        if transform == "similarity":
            return {"input_ids": inputs.similarity(example.text, example.pair), "labels": example.label}
        if transform == "entailment":
            return {"input_ids": inputs.entailment(example.text, example.pair), "labels": example.label}
        return {"input_ids": inputs.classification(example.text), "labels": example.label}

    return encode


# ---- multiple choice --------------------------------------------------------------------------------------
def _choices(recipe: RecipeConfig, tokenizer: Tokenizer) -> Prepared:
    d = recipe.data
    train_path, test_path = _paths(recipe)
    fields = (d.text_field, d.pair_field or "endings", d.label_field)
    train = _limit(formats.load_choice_examples(train_path, *fields), d.limit_train)
    test = _limit(formats.load_choice_examples(test_path, *fields), d.limit_test)
    if recipe.family == "gpt":
        inputs = GptInputs(tokenizer, recipe.max_length)

        def encode(e: formats.ChoiceExample) -> Feature:
            return {"input_ids": inputs.multiple_choice(e.context, e.endings), "labels": e.label}
    else:

        def encode(e: formats.ChoiceExample) -> Feature:
            pairs = tokenizer.encode_pair_batch(
                [(e.context, x) for x in e.endings], max_length=recipe.max_length
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
def _tagging(recipe: RecipeConfig, tokenizer: Tokenizer) -> Prepared:
    train_path, test_path = _paths(recipe)
    train = _limit(conll.read_conll(train_path), recipe.data.limit_train)
    test = _limit(conll.read_conll(test_path), recipe.data.limit_test)
    names = conll.tag_names_of([*train, *test])  # the tag set is known up front, as CoNLL's is
    ids = {t: i for i, t in enumerate(names)}

    def encode(sentence: conll.TaggedSentence) -> Feature:
        features = conll.first_subtoken_features(tokenizer, sentence, ids, recipe.max_length)
        features.pop("word_starts")
        return features

    starts = [
        conll.first_subtoken_features(tokenizer, s, ids, recipe.max_length)["word_starts"] for s in test
    ]

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
def _span_qa(recipe: RecipeConfig, tokenizer: Tokenizer) -> Prepared:
    train_path, test_path = _paths(recipe)
    train = _limit(squad.read_squad(train_path), recipe.data.limit_train)
    test = _limit(squad.read_squad(test_path), recipe.data.limit_test)
    options = dict(
        max_length=recipe.max_length, doc_stride=recipe.doc_stride, max_query_length=recipe.max_query_length
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
