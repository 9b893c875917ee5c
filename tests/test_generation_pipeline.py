"""Text in, text out: the pipeline with real (small, trained here) tokenizers and tiny random models."""

from __future__ import annotations

import warnings

import pytest
import torch

import t2t.generation.pipeline as pipeline_module
from generation_helpers import spread_weights, tiny_model_for, train_tokenizer
from t2t.errors import T2TError
from t2t.generation import Pipeline, load_pipeline
from t2t.generation.inputs import prompt_limit
from t2t.generation.text import TruncationWarning, encode_prompts

KINDS = {"sentencepiece": ("encoder-decoder", 400), "bpe": ("decoder", 500)}
PROMPTS = [
    "translate English to German: house",
    "summarize: the quick brown fox jumps over a lazy dog while data flows",
    "Grüße aus Zürich",
    "question: where is São Paulo",
    "a",
]


@pytest.fixture(scope="module", params=sorted(KINDS))
def pipe(request, tmp_path_factory):
    arch, size = KINDS[request.param]
    tokenizer = train_tokenizer(tmp_path_factory.mktemp(request.param), request.param, size)
    model = tiny_model_for(tokenizer, arch)
    spread_weights(model, 0)  # clear argmaxes, so batching cannot flip a near-tie
    return Pipeline(model, tokenizer, max_new_tokens=12)


def test_one_prompt_gives_a_string_a_list_gives_a_list_in_order(pipe):
    alone = [pipe(p) for p in PROMPTS]
    assert all(isinstance(a, str) for a in alone)
    assert any(alone), "a random model still says something"
    assert pipe(PROMPTS, batch_size=2) == alone
    assert pipe(PROMPTS, batch_size=16) == alone


def test_batches_are_formed_by_length(pipe, monkeypatch):
    seen = []
    original = Pipeline.generate_batch

    def spy(self, ids, config):
        seen.append([len(i) for i in ids])
        return original(self, ids, config)

    monkeypatch.setattr(Pipeline, "generate_batch", spy)
    pipe(PROMPTS, batch_size=2)
    flat = [n for chunk in seen for n in chunk]
    assert [len(c) for c in seen] == [2, 2, 1] and flat == sorted(flat)


def test_stream_pieces_join_to_the_answer(pipe):
    for prompt in PROMPTS:
        pieces = list(pipe.stream(prompt))
        assert "".join(pieces) == pipe(prompt)
        assert all("\ufffd" not in p for p in pieces) or "\ufffd" in pipe(prompt)
    assert (
        len(list(pipe.stream(PROMPTS[1], max_new_tokens=12, eos_token_id=[]))) > 1
    )  # streamed, not one block
    assert list(pipe.stream(PROMPTS[0], num_beams=3)) == [pipe(PROMPTS[0], num_beams=3)]


def test_stream_yields_while_generating(pipe, monkeypatch):
    """Each piece comes out as soon as its token is chosen, not after the whole answer is generated."""
    chosen = []
    real = pipeline_module.stream_tokens

    def counting(*args, **kwargs):
        for tokens in real(*args, **kwargs):
            chosen.append(int(tokens[0]))
            yield tokens

    monkeypatch.setattr(pipeline_module, "stream_tokens", counting)
    seen_at = [len(chosen) for _ in pipe.stream(PROMPTS[1], max_new_tokens=12, eos_token_id=[])]
    assert len(chosen) == 12 and len(seen_at) > 3
    assert seen_at[0] < 12 and seen_at == sorted(seen_at) and len(set(seen_at)) > 3  # spread out


class _NoStreamTokenizer:
    """A tokenizer without decode_stream: the pipeline falls back to decoding prefixes."""

    def __init__(self, tokenizer):
        self.inner = tokenizer
        self.eos_id, self.bos_id = tokenizer.eos_id, tokenizer.bos_id

    def encode(self, text, add_special_tokens=True):
        return self.inner.encode(text, add_special_tokens=add_special_tokens)

    def decode(self, ids, skip_special_tokens=True):
        return self.inner.decode(ids, skip_special_tokens=skip_special_tokens)


@pytest.mark.parametrize("stream_support", [True, False], ids=["decode_stream", "prefix-fallback"])
def test_stream_holds_back_split_characters(pipe, monkeypatch, stream_support):
    """Byte-level BPE splits 🙂 into four byte tokens and sentencepiece puts word boundaries on the next
    piece: replay a known token sequence through the streaming path and check every piece is whole."""
    tokenizer = pipe.tokenizer if stream_support else _NoStreamTokenizer(pipe.tokenizer)
    text = "Grüße aus Zürich 東京 🙂 ok"
    ids = pipe.tokenizer.encode(text, add_special_tokens=False)
    monkeypatch.setattr(pipeline_module, "stream_tokens", lambda *a, **k: (torch.tensor([i]) for i in ids))
    replay = Pipeline(pipe.model, tokenizer, max_new_tokens=len(ids))
    pieces = list(replay.stream("anything"))
    assert "".join(pieces) == pipe.tokenizer.decode(ids)
    assert all("\ufffd" not in p for p in pieces) and len(pieces) > 3
    if pipe.tokenizer.kind == "bpe":  # sentencepiece without byte fallback has no 🙂 (it is <unk>)
        assert any("🙂" in p for p in pieces)
    assert any(p.startswith(" ") for p in pieces)  # word boundaries arrive as leading spaces


def test_several_answers_per_prompt(pipe):
    answers = pipe(PROMPTS[:2], do_sample=True, seed=0, num_return_sequences=3)
    assert [len(a) for a in answers] == [3, 3] and all(isinstance(s, str) for a in answers for s in a)
    assert pipe(PROMPTS[:2], do_sample=True, seed=0, num_return_sequences=3) == answers


def test_long_prompts_are_truncated_with_a_warning_or_refused(pipe):
    long = " ".join(["the quick brown fox"] * 200)
    with pytest.warns(TruncationWarning, match=r"prompt 1: the prompt has \d+ tokens, more than the \d+"):
        answers = pipe(["house", long])
    assert len(answers) == 2
    strict = Pipeline(pipe.model, pipe.tokenizer, truncate=False, max_new_tokens=12)
    with pytest.raises(T2TError, match=r"prompt 1: the prompt has \d+ tokens") as err:
        strict(["house", long])
    assert "\n" not in str(err.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        strict("house")  # short prompts: no warning


def test_truncation_keeps_the_right_end(pipe):
    """T5 keeps the start and its closing </s>; a decoder-only model keeps the end it continues."""
    words = " ".join(f"w{i}" for i in range(700))
    full = pipe.tokenizer.encode(words)
    limit = prompt_limit(pipe.model, 12)
    assert len(full) > limit
    with pytest.warns(TruncationWarning):
        (cut,) = encode_prompts(pipe.model, pipe.tokenizer, [words], max_new_tokens=12)
    assert len(cut) == limit
    if pipe.model.config.arch == "encoder-decoder":
        assert cut[:-1] == full[: limit - 1] and cut[-1] == pipe.tokenizer.eos_id
    else:
        assert cut == full[-limit:]


@pytest.mark.parametrize("bad", ["", "   "])
def test_an_empty_prompt_is_refused(pipe, bad):
    with pytest.raises(T2TError, match="prompt 1: the prompt is empty"):
        pipe(["house", bad])


def test_load_pipeline_reads_model_and_tokenizer_from_one_directory(pipe, tmp_path):
    pipe.model.save_pretrained(tmp_path)
    pipe.tokenizer.save_pretrained(tmp_path)
    loaded = load_pipeline(tmp_path, device="cpu", max_new_tokens=12)
    assert loaded(PROMPTS) == pipe(PROMPTS)


def test_load_pipeline_refuses_a_mismatched_tokenizer(pipe, tmp_path):
    import t2t

    small = t2t.build_model(
        t2t.preset("t5-tiny" if pipe.model.config.arch == "encoder-decoder" else "gpt2-tiny")
    )
    small.save_pretrained(tmp_path)
    pipe.tokenizer.save_pretrained(tmp_path)
    with pytest.raises(T2TError, match="do not belong together"):
        load_pipeline(tmp_path)
