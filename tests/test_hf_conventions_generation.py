"""generate() and model.config as transformers users know them: `return_dict_in_generate=True,
output_scores=True` (each step's processed scores, equal to transformers'), `inputs=`, `generation_config=`
(transformers' object, a dict or t2t's), model.config's transformers attribute names (read-only), and a
pipeline saved whole (model, tokenizer, generation defaults) and loaded in a dtype."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import t2t
from generation_helpers import (
    hf_and_t2t,
    hf_generate,
    left_padded,
    pad_after_eos,
    right_padded,
    spread_weights,
    tiny_model_for,
    train_tokenizer,
)
from t2t.config import HF_NAMES, ReadOnlyNameError
from t2t.errors import ConfigError, T2TError
from t2t.generation import GenerationConfig, GenerationOutput, Pipeline, generate, load_pipeline

from hf_reference import REFERENCES, UNTIED_T5, reference

NEW = 6
# Logits match transformers' within ~1e-5 here (its formula for GELU, t2t's fused kernels); the scores
# are those logits through the same processors.
ATOL = 1e-4
MODES = {
    "greedy": {},
    "penalties": {"repetition_penalty": 1.3, "no_repeat_ngram_size": 2},
    "beam": {"num_beams": 3, "num_return_sequences": 2},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache: dict[str, tuple] = {}

    def get(name: str) -> tuple:
        if name not in cache:
            hf_model, kind, model = hf_and_t2t(name, 0, tmp_path_factory.mktemp(name))
            torch.manual_seed(1000)
            make = right_padded if kind == "seq2seq" else left_padded
            ids, mask = make(128, batch=3, length=9, pad_id=model.config.pad_id)
            cache[name] = (hf_model, kind, model, ids, mask)
        return cache[name]

    return get


def assert_steps_close(ours: tuple[torch.Tensor, ...], theirs: tuple[torch.Tensor, ...]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape and a.dtype == b.dtype == torch.float32
        assert torch.equal(torch.isfinite(a), torch.isfinite(b))  # the same tokens banned (-inf)
        finite = torch.isfinite(b)
        assert torch.allclose(a[finite], b[finite], atol=ATOL, rtol=0)


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("name", ["t5", "gpt2", "llama-gqa"])
def test_output_scores_and_logits_match_transformers(built, name, mode):
    hf_model, kind, model, ids, mask = built(name)
    pad = model.config.pad_id
    options = dict(max_new_tokens=NEW, output_scores=True, output_logits=True, return_dict_in_generate=True)
    expected = hf_generate(hf_model, kind, ids, attention_mask=mask, pad_id=pad, **options, **MODES[mode])
    got = model.generate(ids, mask, **options, **MODES[mode])
    assert isinstance(got, GenerationOutput)
    start = 1 if kind == "seq2seq" else ids.shape[1]
    beam = mode == "beam"
    expected_sequences = (
        pad_after_eos(expected.sequences, start, [model.config.eos_id], pad) if beam else expected.sequences
    )
    assert torch.equal(got["sequences"], expected_sequences)
    rows = ids.shape[0] * (3 if beam else 1)
    assert all(step.shape == (rows, model.config.vocab_size) for step in got.scores)
    assert_steps_close(got.scores, expected.scores)
    assert_steps_close(got.logits, expected.logits)
    if beam:
        assert torch.allclose(got.sequences_scores, expected.sequences_scores, atol=1e-5, rtol=1e-4)
    else:
        assert got.sequences_scores is None  # transformers gives none for greedy search
    plain = model.generate(ids, mask, max_new_tokens=NEW, return_dict_in_generate=True, **MODES[mode])
    assert plain.scores is None and plain.logits is None and torch.equal(plain.sequences, got.sequences)


def test_inputs_and_generation_config_forms(built):
    from transformers import GenerationConfig as HFGenerationConfig

    _, _, model, ids, mask = built("t5")
    expected = model.generate(ids, mask, max_new_tokens=4, num_beams=2)
    assert torch.equal(
        model.generate(inputs=ids, attention_mask=mask, max_new_tokens=4, num_beams=2), expected
    )
    forms = [
        HFGenerationConfig(max_new_tokens=4, num_beams=2),
        {"max_new_tokens": 4, "num_beams": 2},
        GenerationConfig(max_new_tokens=4, num_beams=2),
    ]
    for form in forms:
        assert torch.equal(model.generate(ids, mask, generation_config=form), expected)
        assert torch.equal(generate(model, ids, mask, form), expected)  # positionally, as config
    out = model.generate(
        ids,
        mask,
        generation_config=HFGenerationConfig(
            max_new_tokens=4, num_beams=2, return_dict_in_generate=True, output_scores=True
        ),
    )
    assert torch.equal(out.sequences, expected) and len(out.scores) == out.sequences.shape[1] - 1
    with pytest.raises(T2TError, match="input_ids or inputs"):
        model.generate(ids, inputs=ids)
    with pytest.raises(ConfigError, match=r"t2t does not implement typical_p=0\.5"):
        model.generate(ids, generation_config=HFGenerationConfig(typical_p=0.5))
    with pytest.raises(ConfigError, match="should be a GenerationConfig"):
        model.generate(ids, generation_config=3)


def test_generation_config_layers_over_the_models_defaults(built):
    """As transformers: call options > generation_config's values > model.generation_config > defaults;
    a t2t GenerationConfig (a complete config) replaces the model's defaults."""
    _, _, model, ids, mask = built("gpt2")
    saved = model.generation_config
    try:
        model.generation_config = GenerationConfig(max_new_tokens=3, repetition_penalty=1.3)
        assert model.generate(ids, mask).shape[1] == ids.shape[1] + 3
        both = model.generate(ids, mask, generation_config={"no_repeat_ngram_size": 2})
        alone = model.generate(ids, mask, max_new_tokens=3, repetition_penalty=1.3, no_repeat_ngram_size=2)
        assert torch.equal(both, alone)
        replaced = model.generate(ids, mask, generation_config=GenerationConfig(max_new_tokens=2))
        assert replaced.shape[1] == ids.shape[1] + 2
        assert model.generate(ids, mask, max_new_tokens=5).shape[1] == ids.shape[1] + 5
        model.generation_config = {"max_new_tokens": 4}  # transformers-style values assigned there
        assert model.generate(ids, mask).shape[1] == ids.shape[1] + 4
    finally:
        model.generation_config = saved


# ---- model.config -------------------------------------------------------------------------------------
def _differs_by_design(name: str, attribute: str) -> bool:
    """transformers 5 writes tie_word_embeddings=true into every T5 config, untied heads included (t2t
    says what the weights are); t2t's model_type names the layout (mt5 is a T5); GPT-2's n_inner is None
    when it is 4 x n_embd; T5 has no initializer_range (it uses initializer_factor)."""
    return (
        (attribute == "tie_word_embeddings" and name in UNTIED_T5)
        or (attribute == "model_type" and name == "mt5")
        or attribute == "initializer_range"
    )


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_model_config_answers_transformers_names(name, tmp_path):
    hf_model, _ = reference(name)
    hf_model.save_pretrained(tmp_path)
    config = t2t.from_pretrained(tmp_path).config
    compared = 0
    for attribute in HF_NAMES:
        theirs = getattr(hf_model.config, attribute, None)
        if theirs is None or _differs_by_design(name, attribute):
            continue
        if attribute in ("id2label", "label2id"):
            theirs = {int(k) if attribute == "id2label" else k: v for k, v in theirs.items()}
        assert getattr(config, attribute) == theirs, attribute
        compared += 1
    assert compared >= 10


def test_model_config_names_are_read_only():
    config = t2t.preset("t5-small")
    assert (config.hidden_size, config.num_heads, config.d_kv, config.num_layers) == (512, 8, 64, 6)
    assert (config.decoder_start_token_id, config.pad_token_id, config.eos_token_id) == (0, 0, 1)
    assert config.is_encoder_decoder and config.model_type == "t5"
    with pytest.raises(
        ReadOnlyNameError, match=r"config.hidden_size is read-only.*config.replace\(d_model=1024\)"
    ):
        config.hidden_size = 1024
    with pytest.raises(AttributeError, match=r"config\.num_key_value_heads is read-only"):
        config.num_key_value_heads = 2
    with pytest.raises(ReadOnlyNameError, match=r"config\.model_type is read-only: t2t derives it"):
        config.model_type = "bert"
    assert config.replace(d_model=1024, n_heads=16).hidden_size == 1024
    assert t2t.preset("llama-small").model_type == "llama" and t2t.preset("gpt2").n_layer == 12
    assert t2t.preset("bert-base").num_hidden_layers == 12 and not t2t.preset("bert-base").is_encoder_decoder


# ---- pipelines ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def t5_pipe(tmp_path_factory):
    tokenizer = train_tokenizer(tmp_path_factory.mktemp("pipe"), "sentencepiece", 400)
    model = tiny_model_for(tokenizer, "encoder-decoder")
    spread_weights(model, 0)
    return Pipeline(model, tokenizer, num_beams=2, max_new_tokens=6)


PROMPTS = ["translate English to German: house", "summarize: the quick brown fox jumps over a lazy dog"]


def test_pipeline_saves_model_tokenizer_and_defaults_together(t5_pipe, tmp_path, capsys):
    from t2t.cli.main import main

    t5_pipe.save_pretrained(tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= names
    again = load_pipeline(tmp_path)
    assert again.config == t5_pipe.config  # num_beams=2, max_new_tokens=6 came back as the model's defaults
    assert again(PROMPTS) == t5_pipe(PROMPTS)
    assert main(["generate", "--model", str(tmp_path), PROMPTS[0]]) == 0  # the CLI takes the directory
    assert capsys.readouterr().out.strip() != ""


@pytest.mark.parametrize("dtype", [torch.bfloat16, "bfloat16", "float16", torch.float32])
def test_load_pipeline_in_a_dtype(t5_pipe, tmp_path, dtype):
    t5_pipe.save_pretrained(tmp_path)
    pipe = load_pipeline(tmp_path, dtype=dtype)
    expected = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype, dtype)  # type: ignore[call-overload]
    assert pipe.model.dtype == expected
    assert all(isinstance(answer, str) for answer in pipe(PROMPTS))


def test_pipeline_save_needs_a_savable_tokenizer(t5_pipe, tmp_path):
    class Bare:
        def encode(self, text, add_special_tokens=True, max_length=None):
            return [5, 1]

        def decode(self, ids, skip_special_tokens=True):
            return ""

    pipe = Pipeline(t5_pipe.model, Bare())
    with pytest.raises(T2TError, match="cannot be saved"):
        pipe.save_pretrained(tmp_path)


def test_saved_directory_path_is_returned(t5_pipe, tmp_path):
    assert t5_pipe.save_pretrained(tmp_path / "out") == Path(tmp_path / "out")
