"""The fine-tuning data formats: record readers, sentence / pair / choice files, CoNLL tagging with
first-subword labels, SQuAD windows and answer mapping, GPT's input transformations, token rows for new
tokens, and the task metrics."""

from __future__ import annotations

import json

import pytest
import torch

import t2t
from t2t.errors import DataError
from t2t.finetune import conll, formats, gpt_inputs, readers, resize, squad
from t2t.finetune.builtin import corpus_tokenizer
from t2t.finetune.scoring import score
from t2t.model.loss import IGNORE_INDEX

BUILTIN = "data/builtin/finetune"


@pytest.fixture(scope="module")
def wordpiece(tmp_path_factory):
    return corpus_tokenizer("wordpiece", 600, lines=1500, workdir=tmp_path_factory.mktemp("wp"))


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    return corpus_tokenizer("bpe", 400, lines=1500, workdir=tmp_path_factory.mktemp("bpe"))


# ---- readers / formats ------------------------------------------------------------------------------
def test_table_row_with_wrong_column_count_names_its_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("sentence\tlabel\ngood\t1\nbad\t1\textra\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.tsv:3: 3 columns but the header has 2"):
        readers.read_records(path)


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"sentence": "a", "label": 1}\n{"sentence": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        readers.read_records(path)
    path.write_text('{"text": "a", "label": 1}\n', encoding="utf-8")
    record = readers.read_records(path)[0]
    with pytest.raises(DataError, match=r'bad.jsonl:1: no "sentence" field \(found \'text\', \'label\'\)'):
        record.field("sentence")


def test_classes_come_from_the_training_file_and_unknown_test_labels_fail(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("s\tlabel\nx\tpos\ny\tneg\nz\tpos\n", encoding="utf-8")
    test = tmp_path / "test.tsv"
    test.write_text("s\tlabel\nx\tneutral\n", encoding="utf-8")
    examples, names = formats.load_text_examples(train, "s", None, "label")
    assert names == ["neg", "pos"] and [e.label for e in examples] == [1, 0, 1]
    with pytest.raises(DataError, match=r"test.tsv:2: label 'neutral' is not one of neg, pos"):
        formats.load_text_examples(test, "s", None, "label", label_names=names)


def test_builtin_pair_and_regression_files_read():
    pairs, names = formats.load_text_examples(
        f"{BUILTIN}/paraphrase/test.tsv", "sentence1", "sentence2", "label"
    )
    assert names == ["0", "1"] and all(e.pair for e in pairs)
    scores, names = formats.load_text_examples(
        f"{BUILTIN}/similarity/test.tsv", "sentence1", "sentence2", "score", regression=True
    )
    assert names is None and all(isinstance(e.label, float) for e in scores)
    assert len({e.label for e in scores}) > 3


def test_choice_examples_from_a_list_or_from_columns(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text(
        "context\tending0\tending1\tending2\tlabel\nhe went\thome\tup\tdown\t2\n", encoding="utf-8"
    )
    (example,) = formats.load_choice_examples(path)
    assert example.endings == ["home", "up", "down"] and example.label == 2
    path.write_text("context\tending0\tending1\tlabel\nhe went\thome\tup\t5\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"c.tsv:2: label 5 is not the index"):
        formats.load_choice_examples(path)
    assert len(formats.load_choice_examples(f"{BUILTIN}/choice/test.jsonl")) > 100


# ---- CoNLL --------------------------------------------------------------------------------------------
def test_conll_reader_checks_bio_tags(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("-DOCSTART- -X- -X- O\n\nJohn _ _ B-PER\nran _ _ O\n\nParis _ _ LOC\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"t.txt:6: tag 'LOC' is not BIO"):
        conll.read_conll(path)
    path.write_text("John _ _ B-PER\nSmith _ _ I-PER\nran _ _ O\n\nParis _ _ B-LOC\n", encoding="utf-8")
    sentences = conll.read_conll(path)
    assert [s.words for s in sentences] == [["John", "Smith", "ran"], ["Paris"]]
    assert conll.tag_names_of(sentences) == ["O", "B-LOC", "B-PER", "I-PER"]


def test_first_subtoken_labels_and_back_to_word_tags(wordpiece):
    words = ["Nebuchadnezzar", "spoke", "to", "Zzyzx", "quickly", "."]
    tags = ["B-PER", "O", "O", "B-LOC", "O", "O"]
    sentence = conll.TaggedSentence(words, tags)
    names = ["O", "B-LOC", "B-PER"]
    features = conll.first_subtoken_features(wordpiece, sentence, {t: i for i, t in enumerate(names)}, 64)
    ids, labels, starts = features["input_ids"], features["labels"], features["word_starts"]
    assert ids[0] == wordpiece.cls_id and ids[-1] == wordpiece.sep_id and len(labels) == len(ids)
    assert len(ids) > len(words) + 2  # the rare names split into several pieces
    assert [labels[p] for p in starts] == [names.index(t) for t in tags]
    assert sum(label != IGNORE_INDEX for label in labels) == len(words)  # only first pieces are labelled
    logits = torch.full((len(ids), len(names)), -1.0)
    for position, label in enumerate(labels):
        if label != IGNORE_INDEX:
            logits[position, label] = 1.0
    assert conll.word_tags(logits, starts, names) == tags
    cut = conll.first_subtoken_features(wordpiece, sentence, {t: i for i, t in enumerate(names)}, 5)
    assert len(cut["input_ids"]) == 5 and cut["word_starts"][-1] == -1
    assert conll.word_tags(torch.zeros(5, 3), cut["word_starts"], names)[-1] == "O"


# ---- SQuAD --------------------------------------------------------------------------------------------
def _squad_file(tmp_path, context, answer, start):
    path = tmp_path / "squad.json"
    qa = {"id": "q1", "question": "Who fed the sheep?", "answers": [{"text": answer, "answer_start": start}]}
    path.write_text(
        json.dumps({"data": [{"paragraphs": [{"context": context, "qas": [qa]}]}]}), encoding="utf-8"
    )
    return path


def test_answer_start_that_misses_its_text_is_an_error(tmp_path):
    path = _squad_file(tmp_path, "Ruth fed the sheep.", "Ruth", 3)
    with pytest.raises(DataError, match=r"data\[0\].paragraphs\[0\].qas\[0\].answers\[0\]: answer_start=3"):
        squad.read_squad(path)


def test_sliding_windows_cover_the_answer_and_map_back_to_characters(wordpiece, tmp_path):
    filler = " ".join(f"The field number {k} was green." for k in range(40))
    context = f"{filler} Boaz fed the sheep of Moab at dawn. {filler}"
    start = context.index("Boaz")
    (example,) = squad.read_squad(_squad_file(tmp_path, context, "Boaz", start))
    features = squad.squad_features(wordpiece, [example], max_length=64, doc_stride=24, max_query_length=16)
    assert len(features) > 5 and all(len(f.input_ids) <= 64 for f in features)
    holding = [f for f in features if f.start_position > 0]
    assert holding and all(
        f.start_position == f.end_position or f.end_position > f.start_position for f in holding
    )
    for f in holding:
        assert wordpiece.decode(f.input_ids[f.start_position : f.end_position + 1]) == "boaz"
        assert f.token_type_ids[f.start_position] == 1
    # every context token is the max-context token of exactly one window
    owners = {}
    for w, f in enumerate(features):
        for position, best in f.max_context.items():
            if best:
                owners.setdefault(f.offsets[position], []).append(w)
    assert all(len(ws) == 1 for ws in owners.values())
    # logits peaked at the gold span (in every window that holds it) give back the answer's characters
    starts = [torch.zeros(len(f.input_ids)) for f in features]
    ends = [torch.zeros(len(f.input_ids)) for f in features]
    for f, s, e in zip(features, starts, ends):
        if f.start_position > 0:
            s[f.start_position], e[f.end_position] = 5.0, 5.0
    assert squad.best_answers([example], features, starts, ends) == ["Boaz"]


def test_doc_windows_stride():
    assert squad.doc_windows(10, 4, 3) == [(0, 4), (3, 4), (6, 4)]
    assert squad.doc_windows(3, 4, 3) == [(0, 3)]


def test_builtin_squad_reads_and_maps(wordpiece):
    examples = squad.read_squad(f"{BUILTIN}/qa/test.json")[:20]
    features = squad.squad_features(wordpiece, examples, max_length=128, doc_stride=48)
    found = {f.example for f in features if f.start_position > 0}
    assert len(found) == len(examples)  # every answer lies wholly inside some window


# ---- GPT input transformations ------------------------------------------------------------------------
def test_gpt_transformations(bpe):
    tokenizer = gpt_inputs.add_gpt_tokens(bpe)
    assert tokenizer.vocab_size == bpe.vocab_size + 3 and gpt_inputs.add_gpt_tokens(tokenizer) is tokenizer
    tokens = gpt_inputs.gpt_tokens(tokenizer)
    inputs = gpt_inputs.GptInputs(tokenizer, max_length=16)
    one = inputs.classification("the lamb")
    assert one[0] == tokens.start and one[-1] == tokens.extract and tokens.delimiter not in one
    pair = inputs.entailment("he went home", "he left")
    assert pair.count(tokens.delimiter) == 1
    ab, ba = inputs.similarity("he went home", "he left")
    cut = ab.index(tokens.delimiter)
    assert ba == [tokens.start, *ab[cut + 1 : -1], tokens.delimiter, *ab[1:cut], tokens.extract]
    choices = inputs.multiple_choice("the sheep", ["ran", "flew", "swam away"])
    assert len(choices) == 3 and all(c[-1] == tokens.extract for c in choices)
    long = inputs.entailment("word " * 40, "short")
    assert len(long) == 16 and long[-3:-1] == tokenizer.encode("short", add_special_tokens=False)[-2:]


def test_fit_parts_cuts_the_longest_first():
    assert gpt_inputs.fit_parts([[1] * 10, [2] * 3], 8) == [[1] * 5, [2] * 3]


def test_new_token_rows_grow_the_embedding_and_keep_old_rows():
    model = t2t.build_model(t2t.preset("gpt2-tiny", head="classification", dropout=0.0))
    before = model.embed.weight.detach().clone()
    resize.init_token_rows(model, [128, 129, 5])
    assert model.embed.num_embeddings == 130 and model.config.vocab_size == 130
    assert torch.equal(model.embed.weight[:5], before[:5]) and not torch.equal(
        model.embed.weight[5], before[5]
    )
    out = model(torch.tensor([[1, 2, 129]]), labels=torch.tensor([1]))
    assert out.logits.shape == (1, 2) and torch.isfinite(out.loss)


# ---- metrics ------------------------------------------------------------------------------------------
def test_recipe_metrics_in_the_shapes_the_recipes_pass():
    """Labels as names, gold answers as lists, tags per word: the scales the docs' score table uses."""
    assert score(["accuracy", "matthews"], ["1", "1", "0", "0", "1"], ["1", "0", "0", "1", "1"]) == {
        "accuracy": 60.0,
        "matthews": pytest.approx(1 / 6),
    }
    scores = score(["pearson", "spearman"], [1.0, 2.0, 2.0, 3.0], [1.0, 3.0, 2.0, 4.0])
    assert scores["spearman"] == pytest.approx(0.9486832980505138)
    qa = score(["exact_match", "token_f1"], ["The Lamb!", "the big lamb"], [["lamb"], ["big sheep"]])
    assert qa == {"exact_match": 50.0, "token_f1": pytest.approx(75.0)}
    tags = score(["entity_f1"], [["B-PER", "O", "O", "I-LOC"]], [["B-PER", "I-PER", "O", "B-LOC"]])
    assert tags["entity_f1"] == pytest.approx(50.0)
    with pytest.raises(t2t.ConfigError, match="acuracy"):
        score(["acuracy"], [1], [1])
