"""make_stream / BatchStream: batch layouts per architecture, truncation counts, packing (same loss as
unpacked), exact resume from state_dict, DDP rank slicing."""

from __future__ import annotations

import itertools
import json
import logging
import random
from pathlib import Path

import pytest
import torch

import t2t
from t2t.data import Mixture, Task, classification_task, make_stream, register_mixture
from t2t.data.objectives import span_corruption_lengths
from t2t.errors import ConfigError, DataError
from tokenizer_helpers import write_corpus

QUICKSTART = Path(__file__).resolve().parents[1] / "data" / "builtin" / "quickstart"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt", lines=600)


@pytest.fixture(scope="module")
def tokenizers(corpus):
    return {
        kind: t2t.Tokenizer.train([corpus], kind=kind, vocab_size=size)
        for kind, size in (("sentencepiece", 400), ("wordpiece", 400), ("bpe", 500))
    }


@pytest.fixture(scope="module")
def sentiment():
    return classification_task("stream_sentiment", QUICKSTART / "sentiment")


@pytest.fixture(scope="module")
def documents(tmp_path_factory, corpus) -> Task:
    """The corpus as blank-line separated documents of 1-6 lines (sentences)."""
    lines = corpus.read_text(encoding="utf-8").splitlines()
    path = tmp_path_factory.mktemp("docs") / "docs.txt"
    blocks, i = [], 0
    for size in itertools.cycle([3, 1, 6, 2, 4]):
        if i >= len(lines):
            break
        blocks.append("\n".join(lines[i : i + size]))
        i += size
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return Task("docs", path, format="documents")


def tiny_model(name: str, tok) -> t2t.T2TModel:
    cfg = t2t.preset(name).replace(vocab_size=tok.model_vocab_size)
    if name != "bert-tiny":
        cfg = cfg.replace(pad_id=tok.pad_id if tok.pad_id is not None else tok.eos_id)
    model = t2t.build_model(cfg)
    model.eval()  # no dropout: losses compare exactly
    return model


def unpad(batch: dict, key: str, mask_key: str) -> list[list[int]]:
    return [row[mask.bool()].tolist() for row, mask in zip(batch[key], batch[mask_key], strict=True)]


def test_text2text_encoder_decoder_layout(tokenizers, sentiment):
    tok = tokenizers["sentencepiece"]
    stream = make_stream(sentiment, tok, batch_size=4, max_input_length=32, max_target_length=16)
    batch = next(stream)
    assert set(batch) == {
        "input_ids",
        "attention_mask",
        "labels",
        "decoder_input_ids",
        "decoder_attention_mask",
    }
    examples = list(itertools.islice(sentiment.examples(), 4))
    for row, example in enumerate(examples):
        target = tok.encode(example["targets"])
        n = len(target)
        assert batch["labels"][row, :n].tolist() == target and target[-1] == tok.eos_id
        assert (batch["labels"][row, n:] == -100).all()
        assert batch["decoder_input_ids"][row, :n].tolist() == [tok.pad_id, *target[:-1]]
        assert batch["decoder_attention_mask"][row].sum() == n
        source = tok.encode(example["inputs"])
        if len(source) <= 32:
            assert unpad(batch, "input_ids", "attention_mask")[row] == source
    out = tiny_model("t5-tiny", tok)(**batch)
    assert torch.isfinite(out.loss)


def test_truncation_is_counted_and_reported(tokenizers, sentiment, caplog):
    tok = tokenizers["sentencepiece"]
    stream = make_stream(sentiment, tok, batch_size=8, max_input_length=6, max_target_length=2, repeat=False)
    with caplog.at_level(logging.WARNING, logger="t2t.data"):
        batches = list(stream)
    assert stream.stats["examples"] == sentiment.num_examples()
    assert sum(len(b["input_ids"]) for b in batches) == sentiment.num_examples()
    assert stream.stats["truncated_inputs"] > 0 and stream.stats["truncated_targets"] > 0
    stats = stream.stats
    line = stats.summary()
    assert "\n" not in line and f"{stats['examples']:,} examples -> {stats['rows']:,} rows" in line
    assert (
        f"truncated {stats['truncated_inputs']:,} inputs and {stats['truncated_targets']:,} targets" in line
    )
    assert "max_input_length=6" in caplog.text
    assert all(b["input_ids"].shape[1] <= 6 and b["labels"].shape[1] <= 2 for b in batches)
    assert all((b["input_ids"][:, -1] == tok.eos_id).all() for b in batches if b["input_ids"].shape[1] == 6)


def test_decoder_text2text_loss_only_on_targets(tokenizers, sentiment):
    tok = tokenizers["bpe"]
    batch = next(
        make_stream(sentiment, tok, arch="decoder", batch_size=2, max_input_length=40, max_target_length=16)
    )
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    example = next(sentiment.examples())
    prompt, target = tok.encode(example["inputs"]), tok.encode(example["targets"], add_special_tokens=False)
    prompt = prompt[-40:]  # a decoder keeps the end of a long prompt, as generation does
    n = len(prompt) + len(target) + 1
    assert batch["input_ids"][0, :n].tolist() == prompt + target + [tok.eos_id]
    assert batch["labels"][0, :n].tolist() == [-100] * len(prompt) + target + [tok.eos_id]
    assert (batch["labels"][0, n:] == -100).all() and batch["attention_mask"][0].sum() == n
    assert torch.isfinite(tiny_model("gpt2-tiny", tok)(**batch).loss)


def test_span_corruption_stream(tokenizers, documents):
    tok = tokenizers["sentencepiece"]
    stream = make_stream(
        documents, tok, objective="span_corruption", batch_size=4, max_input_length=32, max_target_length=16
    )
    batch = next(stream)
    assert batch["input_ids"].shape[1] <= 32 and batch["labels"].shape[1] <= 16
    text = next(documents.examples())["text"]
    body = tok.encode(text, add_special_tokens=False)
    inputs = unpad(batch, "input_ids", "attention_mask")[0]
    targets = [t for t in batch["labels"][0].tolist() if t != -100]
    sentinels = {tok.sentinel_id(k) for k in range(100)}
    spans, current = {}, None
    for t in targets[:-1]:
        if t in sentinels:
            current = spans.setdefault(t, [])
        else:
            current.append(t)
    restored = [x for t in inputs[:-1] for x in (spans[t] if t in sentinels else [t])]
    raw = span_corruption_lengths(32)[0]  # raw tokens a chunk holds so that inputs fill 32
    assert restored == body[: len(restored)] and len(restored) == min(len(body), raw)
    assert torch.isfinite(tiny_model("t5-tiny", tok)(**batch).loss)


def _rows(batch: dict) -> list[tuple]:
    return list(zip(*(unpad(batch, k, "attention_mask") for k in ("input_ids",)), strict=True))


@pytest.mark.parametrize("arch", ["encoder-decoder", "decoder"])
def test_packed_batch_gives_the_same_loss(tokenizers, corpus, arch):
    tok = tokenizers["sentencepiece"] if arch == "encoder-decoder" else tokenizers["bpe"]
    objective = "span_corruption" if arch == "encoder-decoder" else "causal_lm"
    options = dict(objective=objective, arch=arch, max_input_length=64, max_target_length=24, repeat=False)
    lines = Task("lines", corpus)  # one short text a line: several fit a row
    unpacked = next(make_stream(lines, tok, batch_size=32, **options))
    packed_stream = make_stream(lines, tok, batch_size=4, pack=True, **options)
    packed = next(packed_stream)
    assert "segment_ids" in packed and "position_ids" in packed
    assert int(packed["segment_ids"].max()) > 1, "several examples share a row"
    pieces = packed_stream.stats["rows"] and int((packed["segment_ids"].amax(1)).sum())
    model = tiny_model("t5-tiny" if arch == "encoder-decoder" else "gpt2-tiny", tok)
    # the same examples unpacked: the first `pieces` rows of the unpacked stream
    assert pieces <= 32
    first = {k: v[:pieces] for k, v in unpacked.items()}
    with torch.no_grad():
        loss_packed = model(**packed).loss
        loss_unpacked = model(**first).loss
    torch.testing.assert_close(loss_packed, loss_unpacked, rtol=1e-5, atol=1e-5)
    seg, pos = packed["segment_ids"][0], packed["position_ids"][0]
    starts = torch.nonzero(pos == 0).reshape(-1).tolist()
    assert seg[starts].tolist()[: int(seg.max())] == list(range(1, int(seg.max()) + 1))


def test_mlm_nsp_encoder(tokenizers, documents):
    tok = tokenizers["wordpiece"]
    stream = make_stream(
        documents, tok, objective="mlm_nsp", arch="encoder", batch_size=8, max_input_length=40
    )
    batch = next(stream)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels", "next_sentence_label"}
    ids, labels = batch["input_ids"], batch["labels"]
    assert (ids[:, 0] == tok.cls_id).all()
    special = torch.tensor(tok.special_ids)
    original = torch.where(labels == -100, ids, labels)
    assert not torch.isin(original[labels != -100], special).any()  # never special tokens
    assert set(batch["next_sentence_label"].tolist()) <= {0, 1}  # the 50/50 split: test_nsp_stream_...
    model = tiny_model("bert-tiny", tok)
    assert torch.isfinite(model(**batch).loss)
    with pytest.raises(ConfigError, match="nsp=False"):
        make_stream(documents, tok, objective="mlm_nsp", arch="encoder", batch_size=2, pack=True)
    mlm = next(
        make_stream(documents, tok, objective="mlm_nsp", arch="encoder", batch_size=2, nsp=False, pack=True)
    )
    assert "next_sentence_label" not in mlm and "segment_ids" in mlm


WORD_DOCS, WORDS_A_DOC = 8, 30


@pytest.fixture(scope="module")
def word_bert(tmp_path_factory):
    """A BERT vocabulary of whole words `d{doc}w{k}`: every token says which document it comes from."""
    folder = tmp_path_factory.mktemp("word_bert")
    words = [f"d{doc}w{k}" for doc in range(WORD_DOCS) for k in range(WORDS_A_DOC)]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (folder / "vocab.txt").write_text("\n".join([*specials, *words]) + "\n", encoding="utf-8")
    tok = t2t.Tokenizer.from_pretrained(folder)
    assert tok.encode("d3w5 d0w0", add_special_tokens=False) == [5 + 3 * WORDS_A_DOC + 5, 5]
    return tok


def word_documents(sentences: list[int], seed: int = 0) -> list[str]:
    """Document d: sentences[d] lines of 1-8 of its own words."""
    rng = random.Random(seed)
    docs = []
    for d, count in enumerate(sentences):
        own = [f"d{d}w{k}" for k in range(WORDS_A_DOC)]
        docs.append("\n".join(" ".join(rng.choices(own, k=rng.randint(1, 8))) for _ in range(count)))
    return docs


def nsp_pairs(tok, batch) -> list[tuple[set[int], set[int], int]]:
    """(documents of A's tokens, documents of B's tokens, label) for each row, masking undone."""
    original = torch.where(batch["labels"] == -100, batch["input_ids"], batch["labels"])
    out = []
    for ids, types, mask, label in zip(
        original, batch["token_type_ids"], batch["attention_mask"], batch["next_sentence_label"], strict=True
    ):
        ids, types = ids[mask.bool()].tolist(), types[mask.bool()].tolist()
        start = types.index(1)
        assert types == [0] * start + [1] * (len(ids) - start)  # [CLS] A [SEP] are type 0, B [SEP] type 1
        assert ids[0] == tok.cls_id and ids[start - 1] == tok.sep_id and ids[-1] == tok.sep_id
        assert tok.sep_id not in ids[1 : start - 1] + ids[start:-1]

        def owners(part: list[int]) -> set[int]:
            return {int(tok.id_to_token(i)[1:].split("w")[0]) for i in part}

        out.append((owners(ids[1 : start - 1]), owners(ids[start:-1]), int(label)))
    return out


def test_nsp_stream_half_real_and_never_the_same_document(word_bert):
    """A corpus of 8 documents (one a duplicate of another's text) repeated 200 times: 2,560 pairs. The
    labels average 0.5 within 0.03 (3 standard errors); every real B is A's document, every random B
    another one: never the same document from an earlier epoch, nor its duplicate."""
    docs = word_documents([1, 2, 3, 5, 6, 1, 4, 2])
    docs[7] = docs[2]  # the same text twice: not "another document"
    task = Task("nsp_words", lambda split: [{"text": t} for t in docs])
    stream = make_stream(
        task, word_bert, objective="mlm_nsp", arch="encoder", batch_size=64, max_input_length=24
    )
    pairs = [p for batch in itertools.islice(stream, 40) for p in nsp_pairs(word_bert, batch)]
    assert len(pairs) == 2560 and stream.stats["pairs"] >= 2560
    for a, b, label in pairs:
        assert len(a) == 1 and len(b) == 1  # A and B are each one document's text
        if label == 0:
            assert b == a
        else:
            assert b != a and not (a | b) >= {2, 7}  # 7 is a copy of 2 and wrote 2's words
    mean = sum(label for *_, label in pairs) / len(pairs)
    assert abs(mean - 0.5) < 0.03, mean


def test_nsp_first_document_gets_random_pairs_too(word_bert):
    """The first document has no earlier one to draw from: it waits for the second. Over 60 seeds its
    pairs are half random (within 0.15: 3 standard errors for its ~100 pairs)."""
    task = Task("nsp_first", lambda split: [{"text": t} for t in word_documents([1, 3, 2, 2])])
    labels = []
    for seed in range(60):
        stream = make_stream(
            task, word_bert, objective="mlm_nsp", arch="encoder", batch_size=4, max_input_length=24, seed=seed
        )
        labels += [label for a, b, label in nsp_pairs(word_bert, next(stream)) if a == {0}]
    assert len(labels) >= 60  # every seed gives the first document at least one pair
    assert abs(sum(labels) / len(labels) - 0.5) < 0.15, sum(labels) / len(labels)


def test_nsp_needs_two_different_documents(word_bert, monkeypatch):
    from t2t.data import features

    same = Task("nsp_same", lambda split: [{"text": "d1w1 d1w2\nd1w3"}] * 3)
    options = dict(objective="mlm_nsp", arch="encoder", batch_size=2, max_input_length=24)
    with pytest.raises(DataError, match="at least two different documents, but all 3 documents"):
        next(make_stream(same, word_bert, repeat=False, **options))
    monkeypatch.setattr(features, "_MAX_WAITING", 50)
    with pytest.raises(DataError, match="the first 51 documents are all the same text"):
        next(make_stream(same, word_bert, **options))


@pytest.mark.parametrize(
    ("objective", "arch", "kind", "pack"),
    [
        ("text2text", "encoder-decoder", "sentencepiece", False),
        ("span_corruption", "encoder-decoder", "sentencepiece", True),
        ("prefix_lm", "decoder", "bpe", True),
        ("mlm_nsp", "encoder", "wordpiece", False),
    ],
)
def test_resume_from_state_dict_is_exact(tokenizers, sentiment, documents, objective, arch, kind, pack):
    tok = tokenizers[kind]
    source = sentiment if objective == "text2text" else documents
    options = dict(
        objective=objective,
        arch=arch,
        batch_size=3,
        max_input_length=24,
        max_target_length=12,
        pack=pack,
        seed=7,
        shuffle=objective == "text2text",
    )
    stream = make_stream(source, tok, **options)
    for _ in range(5):
        next(stream)
    state = json.loads(json.dumps(stream.state_dict()))  # plain data: survives JSON as well as torch.save
    expected = [next(stream) for _ in range(4)]
    resumed = make_stream(source, tok, **options)
    resumed.load_state_dict(state)
    for want in expected:
        got = next(resumed)
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in want)
    assert resumed.stats == stream.stats


def test_rank_slices_of_the_global_batch(tokenizers, sentiment):
    tok = tokenizers["sentencepiece"]
    options = dict(batch_size=6, max_input_length=32, max_target_length=16)
    whole = list(itertools.islice(make_stream(sentiment, tok, **options), 3))
    parts = [
        list(itertools.islice(make_stream(sentiment, tok, rank=r, world_size=3, **options), 3))
        for r in range(3)
    ]
    for step in range(3):
        rows = [row for r in range(3) for row in unpad(parts[r][step], "input_ids", "attention_mask")]
        assert rows == unpad(whole[step], "input_ids", "attention_mask")
        assert all(len(parts[r][step]["input_ids"]) == 2 for r in range(3))
    with pytest.raises(ConfigError, match="not divisible by world_size=4"):
        make_stream(sentiment, tok, batch_size=6, world_size=4, rank=1)


def test_configuration_errors(tokenizers, sentiment):
    with pytest.raises(ConfigError, match="does not suit arch='encoder'"):
        make_stream(sentiment, tokenizers["wordpiece"], arch="encoder", batch_size=2)
    with pytest.raises(ConfigError, match="needs sentinel tokens"):
        make_stream(sentiment, tokenizers["bpe"], objective="span_corruption", batch_size=2)
    with pytest.raises(ConfigError, match="did you mean 'noise_density'"):
        make_stream(
            sentiment,
            tokenizers["sentencepiece"],
            objective="span_corruption",
            batch_size=2,
            noise_densty=0.2,
        )
    with pytest.raises(ConfigError, match="noise spans but the tokenizer has 100 sentinels"):
        make_stream(
            sentiment,
            tokenizers["sentencepiece"],
            objective="span_corruption",
            batch_size=2,
            max_input_length=4096,
        )


def test_sources_by_mixture_name_and_path(tokenizers, sentiment, tmp_path):
    tok = tokenizers["sentencepiece"]
    rows = [{"inputs": f"item {i}", "targets": "yes" if i % 2 else "no"} for i in range(5)]
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    by_path = list(
        make_stream(str(path), tok, batch_size=2, max_input_length=16, max_target_length=4, repeat=False)
    )
    assert [len(b["input_ids"]) for b in by_path] == [2, 2, 1]
    mixture = Mixture("stream_mix", [sentiment, Task("small", path)], rate="equal")
    register_mixture(mixture, overwrite=True)
    once = make_stream(
        "stream_mix", tok, batch_size=4, max_input_length=16, max_target_length=4, repeat=False
    )
    assert sum(len(b["input_ids"]) for b in once) == sentiment.num_examples() + 5
    endless = make_stream(mixture, tok, batch_size=4, max_input_length=16, max_target_length=4)
    for _ in range(3):
        next(endless)
    assert endless.stats["examples"] == 12 and endless.stats["batches"] == 3


def test_skipped_records_reach_the_stream_stats(tokenizers, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"inputs": "a", "targets": "b"}\nnot json\n{"inputs": "c"}\n{"inputs": "d", "targets": "e"}\n'
    )
    task = Task("bad", path, skip_bad_records=True)
    stream = make_stream(
        task, tokenizers["sentencepiece"], batch_size=1, max_input_length=8, max_target_length=4
    )
    next(stream)
    next(stream)
    assert stream.stats["skipped_records"] == 2 and stream.stats["examples"] == 2
    assert stream.stats.summary().startswith(
        "data: 2 examples -> 2 rows in 2 batches; truncated 0 inputs and 0 targets; 2 bad records skipped; "
        "padding 0.0% of "
    )


def test_examples_too_short_for_the_objective_end_the_stream_clearly(word_bert, monkeypatch):
    from t2t.data import stream as stream_module

    monkeypatch.setattr(stream_module, "_MAX_BARREN", 20)
    one_token = Task("one_token", lambda split: [{"text": f"d{i % 8}w1"} for i in range(100)])
    options = dict(objective="mlm_nsp", arch="encoder", batch_size=2, max_input_length=24)
    with pytest.raises(
        DataError,
        match=r"20 examples in a row \(examples 0 to 19, counting from 0\) made nothing to train on",
    ):
        next(make_stream(one_token, word_bert, **options))
