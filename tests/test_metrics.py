"""t2t.metrics against values worked out by hand, and against sacrebleu / rouge-score / seqeval /
scipy / scikit-learn where those are installed."""

from __future__ import annotations

import math
import random

import pytest

from t2t.errors import ConfigError, DataError
from t2t.metrics import METRICS, compute, entities, normalize_answer


# ---- answers ---------------------------------------------------------------------------------------------
def test_accuracy_compares_as_is_and_takes_any_acceptable_answer():
    scores = compute("accuracy", ["a", "b", "c", "A"], ["a", ["x", "b"], "d", "a"])
    assert scores == {"accuracy": pytest.approx(50.0)}
    assert compute("accuracy", [1, 0], [1, 1]) == {"accuracy": 50.0}


def test_squad_normalisation():
    assert normalize_answer("  The Lamb's  wool, an A-list item!") == "lambs wool alist item"
    assert normalize_answer("theatre anthem") == "theatre anthem"  # articles only as whole words


def test_exact_match_normalises_and_takes_the_best_answer():
    scores = compute("exact_match", ["The Lamb!", "x", "a dog"], [["sheep", "lamb"], "y", "Dog."])
    assert scores["exact_match"] == pytest.approx(200 / 3)


def test_token_f1_by_hand():
    # [big, lamb] vs [big, sheep]: 1 common token, P = R = 1/2
    assert compute("token_f1", ["the big lamb"], ["big sheep"])["token_f1"] == pytest.approx(50.0)
    # the best answer counts; [a b c] vs [a b]: P = 2/3, R = 1 -> F1 = 0.8
    assert compute("token_f1", ["a1 b1 c1"], [["zz", "a1 b1"]])["token_f1"] == pytest.approx(80.0)
    # repeated tokens count as often as both sides have them: [x x y] vs [x y y] -> 2 common, F1 = 2/3
    assert compute("token_f1", ["x x y"], ["x y y"])["token_f1"] == pytest.approx(200 / 3)
    # two empty answers (after normalisation) agree; one empty side scores 0
    assert compute("token_f1", ["the", "", "a b"], ["", "b", ""])["token_f1"] == pytest.approx(100 / 3)


# ---- overlap: sacrebleu and rouge-score --------------------------------------------------------------------
def test_bleu_by_hand():
    assert compute("bleu", ["the cat sat on the mat"], ["the cat sat on the mat"])["bleu"] == pytest.approx(
        100
    )
    # every n-gram precision is 1, the hypothesis is 4 of 6 words: brevity penalty exp(1 - 6/4)
    got = compute("bleu", ["a b c d"], ["a b c d e f"])["bleu"]
    assert got == pytest.approx(100 * math.exp(-0.5), rel=1e-6)
    # the second of two acceptable references matches exactly
    assert compute("bleu", ["one two three four"], [["x y z w", "one two three four"]])[
        "bleu"
    ] == pytest.approx(100)


def test_bleu_and_chrf_equal_sacrebleu_with_a_ragged_number_of_references():
    sacrebleu = pytest.importorskip("sacrebleu")
    hyps = ["the small cat sat on a mat", "he read the book today", "it rains in spring"]
    refs = [
        ["the cat sat on the mat", "a small cat was sitting on the mat"],
        "he reads a book",
        ["rain in spring"],
    ]
    streams = [
        ["the cat sat on the mat", "he reads a book", "rain in spring"],
        ["a small cat was sitting on the mat", None, None],
    ]
    assert compute("bleu", hyps, refs)["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, streams).score)
    assert compute("chrf", hyps, refs)["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, streams).score)
    assert 0 < compute("chrf", hyps, refs)["chrf"] < 100


def test_chrf_extremes():
    assert compute("chrf", ["Haus"], ["Haus"])["chrf"] == pytest.approx(100)
    assert compute("chrf", ["xyz"], ["abc"])["chrf"] == pytest.approx(0)


def test_rouge_by_hand():
    scores = compute("rouge", ["the cat sat"], ["the cat sat down"])
    # unigrams: P = 1, R = 3/4 -> F = 6/7; bigrams: P = 1, R = 2/3 -> F = 0.8; LCS = 3 words
    assert scores == {
        "rouge1": pytest.approx(600 / 7),
        "rouge2": pytest.approx(80.0),
        "rougeL": pytest.approx(600 / 7),
    }
    assert compute("rouge", ["cats running"], ["cat runs"])["rouge1"] == pytest.approx(100)  # Porter stemmer
    # averaged over examples; the best reference counts
    both = compute("rouge", ["a b", "c d"], [["x y", "a b"], "e f"])
    assert both["rouge1"] == pytest.approx(50.0) and both["rougeL"] == pytest.approx(50.0)


def test_rouge_equals_rouge_score():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    preds = ["the quick brown fox jumped over dogs", "police killed the gunman"]
    refs = ["a quick brown fox jumps over the lazy dog", "the gunman was shot down by police"]
    ours = compute("rouge", preds, refs)
    for name in ("rouge1", "rouge2", "rougeL"):
        expected = sum(scorer.score(r, p)[name].fmeasure for p, r in zip(preds, refs)) / 2
        assert ours[name] == pytest.approx(100 * expected)


# ---- entity F1 ----------------------------------------------------------------------------------------------
def test_entities_follow_seqeval_default_mode():
    assert entities(["B-PER", "I-PER", "O", "B-LOC"]) == {("PER", 0, 1), ("LOC", 3, 3)}
    assert entities(["O", "I-LOC", "I-LOC"]) == {("LOC", 1, 2)}  # I- without B- starts an entity
    assert entities(["B-PER", "I-LOC"]) == {("PER", 0, 0), ("LOC", 1, 1)}  # a type change splits
    assert entities(["B-PER", "B-PER"]) == {("PER", 0, 0), ("PER", 1, 1)}
    assert entities(["S-PER", "B-LOC", "E-LOC", "O"]) == {("PER", 0, 0), ("LOC", 1, 2)}  # BIOES
    assert entities(["O", "O"]) == set()


def test_entity_f1_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "O", "I-LOC"], ["O", "O"]]
    # predicted {PER 0-0, LOC 3-3}, gold {PER 0-1, LOC 3-3, ORG 0-0}: 1 right; P = 1/2, R = 1/3, F1 = 0.4
    scores = compute("entity_f1", pred, gold)
    assert scores["entity_precision"] == pytest.approx(50.0)
    assert scores["entity_recall"] == pytest.approx(100 / 3)
    assert scores["entity_f1"] == pytest.approx(40.0)
    # generated answers are text: whitespace-separated tags, of any length
    text = compute("entity_f1", ["B-PER I-PER O", "B-LOC"], ["B-PER I-PER", "B-LOC O O B-LOC"])
    assert text["entity_precision"] == pytest.approx(100.0) and text["entity_recall"] == pytest.approx(
        200 / 3
    )
    assert compute("entity_f1", [["O"]], [["O"]])["entity_f1"] == 0.0


def _random_tags(rng: random.Random, n: int) -> list[str]:
    return [
        rng.choice(["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG", "E-PER", "S-LOC"])
        for _ in range(n)
    ]


def test_entity_f1_equals_seqeval():
    seqeval = pytest.importorskip("seqeval.metrics")
    rng = random.Random(0)
    for _ in range(20):
        lengths = [rng.randint(1, 12) for _ in range(rng.randint(1, 6))]
        gold = [_random_tags(rng, n) for n in lengths]
        pred = [_random_tags(rng, n) for n in lengths]
        ours = compute("entity_f1", pred, gold)
        assert ours["entity_f1"] == pytest.approx(100 * seqeval.f1_score(gold, pred))
        assert ours["entity_precision"] == pytest.approx(100 * seqeval.precision_score(gold, pred))
        assert ours["entity_recall"] == pytest.approx(100 * seqeval.recall_score(gold, pred))


# ---- correlations --------------------------------------------------------------------------------------------
def test_correlations_by_hand():
    # r of (1,2,3) and (2,4,7): 5 / sqrt(2 * 12.666...) = 0.99339926779878
    assert compute("pearson", [1, 2, 3], [2, 4, 7])["pearson"] == pytest.approx(0.99339926779878)
    # ranks (1, 2.5, 2.5, 4) and (1, 3, 2, 4): rho = 4.5 / sqrt(4.5 * 5) = 0.9486832980505138
    assert compute("spearman", [1, 2, 2, 3], [1, 3, 2, 4])["spearman"] == pytest.approx(0.9486832980505138)
    # generated text: numbers as strings; a non-number reads as -1
    assert compute("pearson", ["1", "2", "oops"], ["1", "2", "-1"])["pearson"] == pytest.approx(1.0)
    assert compute("spearman", ["3", "2", "1"], [1, 2, 3])["spearman"] == pytest.approx(-1.0)
    assert compute("pearson", [1, 1, 1], [1, 2, 3])["pearson"] == 0.0  # undefined: 0, never NaN
    with pytest.raises(DataError, match="reference 1 is 'high', not a number"):
        compute("pearson", [1, 2], [1, "high"])


def test_matthews_by_hand():
    # tp 2, tn 1, fp 1, fn 1: (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6
    assert compute("matthews", [1, 1, 0, 0, 1], [1, 0, 0, 1, 1])["matthews"] == pytest.approx(1 / 6)
    assert compute("matthews", ["no", "yes"], ["no", "yes"])["matthews"] == pytest.approx(1.0)
    assert compute("matthews", ["no", "yes"], ["yes", "no"])["matthews"] == pytest.approx(-1.0)
    # three classes: (3*4 - 5) / sqrt((16 - 6) * (16 - 6)) = 0.7
    assert compute("matthews", list("abca"), list("abcc"))["matthews"] == pytest.approx(0.7)
    assert compute("matthews", [1, 1], [1, 0])["matthews"] == 0.0


def test_correlations_equal_scipy_and_sklearn():
    stats = pytest.importorskip("scipy.stats")
    sk = pytest.importorskip("sklearn.metrics")
    rng = random.Random(1)
    x = [rng.choice([0.0, 1.5, 2.0, 3.0, 4.5, 5.0]) for _ in range(40)]
    y = [v + rng.gauss(0, 1.5) for v in x]
    assert compute("pearson", x, y)["pearson"] == pytest.approx(stats.pearsonr(x, y)[0])
    assert compute("spearman", x, y)["spearman"] == pytest.approx(stats.spearmanr(x, y)[0])
    labels = [rng.choice("abc") for _ in range(40)]
    guesses = [g if rng.random() < 0.6 else rng.choice("abc") for g in labels]
    assert compute("matthews", guesses, labels)["matthews"] == pytest.approx(
        sk.matthews_corrcoef(labels, guesses)
    )


# ---- the registry ---------------------------------------------------------------------------------------------
def test_every_contract_name_is_registered():
    expected = {"accuracy", "exact_match", "token_f1", "bleu", "chrf", "rouge", "entity_f1"}
    assert expected | {"pearson", "spearman", "matthews"} == set(METRICS)


def test_unknown_metric_and_bad_inputs_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"unknown metric 'acuracy' \(did you mean 'accuracy'\?\)"):
        compute("acuracy", [1], [1])
    with pytest.raises(DataError, match="2 predictions but 1 references"):
        compute("exact_match", ["a", "b"], ["a"])
    with pytest.raises(DataError, match="no examples to score"):
        compute("bleu", [], [])
