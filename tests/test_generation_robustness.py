"""The API side of the bad inputs a new user tried: NaN or infinite decoding settings, integers past
int64, requests and models too large for the memory (refused before anything is allocated), buffers
that grow with the tokens generated instead of being reserved for max_new_tokens, checkpoints of NaN
weights, and checkpoints whose config no longer matches their weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import t2t
import t2t.model.memory as memory
from generation_helpers import left_padded, right_padded, spread_weights
from t2t.errors import CheckpointError, ConfigError
from t2t.generation import GenerationConfig, generate
from t2t.generation.beam import BeamSettings, beam_search
from t2t.generation.greedy import TokenByToken
from t2t.generation.steps import make_steps
from t2t.model.build import model_class, parameter_count
from t2t.model.cache import LayerCache

HUGE = 10**12  # tokens: reserving a buffer this long up front fails at once (8 TB of ids)


def tiny(arch: str, position: str = "t5-relative") -> t2t.T2TModel:
    layers = (
        dict(n_encoder_layers=2, n_decoder_layers=2)
        if arch == "encoder-decoder"
        else dict(n_encoder_layers=0, n_decoder_layers=2, decoder_start_id=None)
    )
    cfg = t2t.ModelConfig(
        arch=arch, vocab_size=96, d_model=32, n_heads=4, d_ff=64, position=position, dropout=0.0, **layers
    )
    torch.manual_seed(0)
    model = t2t.build_model(cfg)
    spread_weights(model, 0)
    return model.eval()


def prompts(model: t2t.T2TModel) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    make = right_padded if model.config.arch == "encoder-decoder" else left_padded
    return make(model.config.vocab_size, batch=3, length=7, pad_id=0)


# ---- NaN, infinity and integers past int64 in GenerationConfig ---------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("field", ["length_penalty", "temperature", "top_p", "repetition_penalty"])
def test_generation_config_refuses_non_finite_floats(field, value):
    with pytest.raises(ConfigError, match=field):
        GenerationConfig(**{field: value}, do_sample=True)


def test_generate_refuses_nan_through_its_keywords():
    model = tiny("encoder-decoder")
    ids, mask = prompts(model)
    with pytest.raises(ConfigError, match="length_penalty"):
        generate(model, ids, mask, num_beams=2, length_penalty=math.nan)


@pytest.mark.parametrize("field", ["max_new_tokens", "num_beams", "top_k", "seed", "pad_token_id"])
def test_generation_config_refuses_integers_past_int64(field):
    with pytest.raises(ConfigError, match=f"{field}={2**70} is out of range"):
        GenerationConfig(**{field: 2**70})


# ---- requests too large for the memory ---------------------------------------------------------------


@pytest.mark.parametrize("arch", ["encoder-decoder", "decoder"])
@pytest.mark.parametrize("options", [{"max_new_tokens": 10**15}, {"num_beams": 10**9, "max_new_tokens": 8}])
def test_generation_too_large_for_memory_is_refused_before_allocating(arch, options):
    model = tiny(arch, position="t5-relative" if arch == "encoder-decoder" else "rope")
    ids, mask = prompts(model)
    with pytest.raises(
        ConfigError, match=r"needs about .* of memory, but cpu has .* free; lower max_new_tokens"
    ):
        generate(model, ids, mask, **options)


def test_memory_check_compares_the_estimate_with_what_is_free(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 10**6)
    memory.check_fits("a thing", 10**6, "cpu", "make it smaller")
    with pytest.raises(
        ConfigError, match=r"a thing needs about 1.5 MB of memory, but cpu has 1 MB free; make"
    ):
        memory.check_fits("a thing", 1_500_000, "cpu", "make it smaller")
    monkeypatch.setattr(memory, "available_bytes", lambda device: None)  # unknown (MPS): no check
    memory.check_fits("a thing", 10**30, "cpu", "make it smaller")


def test_learned_positions_cap_max_new_tokens_with_the_limit_named():
    model = tiny("decoder", position="learned")  # max_positions=512
    ids, mask = prompts(model)
    with pytest.raises(t2t.T2TError, match="lower max_new_tokens to 505"):
        generate(model, ids, mask, max_new_tokens=99999999)


# ---- buffers grow with the tokens, not with max_new_tokens -------------------------------------------


class ScriptedSteps:
    """Logits that pick token 5 for `steps` steps and then the end token 1, whatever the history."""

    def __init__(self, steps: int, vocab: int = 8) -> None:
        self.steps, self.vocab, self.calls = steps, vocab, 0

    def __call__(self, sequence: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(sequence.shape[0], self.vocab)
        logits[:, 5 if self.calls < self.steps else 1] = 10.0
        self.calls += 1
        return logits

    def reorder(self, index: torch.Tensor) -> None:
        pass


def test_greedy_reserves_nothing_for_max_new_tokens():
    start = torch.zeros(2, 3, dtype=torch.long)
    search = TokenByToken(
        ScriptedSteps(4), start, max_new_tokens=HUGE, processors=[], eos_ids=[1], pad_id=0, do_sample=False
    )
    sequences, _ = search.run()
    assert sequences[0].tolist() == [0, 0, 0, 5, 5, 5, 5, 1]
    assert search.sequences.shape[1] <= 3 + 16


def test_beam_search_reserves_nothing_for_max_new_tokens():
    start = torch.zeros(2 * 3, 2, dtype=torch.long)
    settings = BeamSettings(num_beams=3, max_new_tokens=HUGE, eos_ids=[1], pad_id=0, early_stopping=True)
    sequences, _ = beam_search(ScriptedSteps(2), start, settings, [])
    assert sequences.shape == (2, 2 + 3) and sequences[0].tolist() == [0, 0, 5, 5, 1]


def test_kv_cache_grows_by_doubling_up_to_its_capacity():
    layer = LayerCache(capacity=HUGE)
    prompt = torch.randn(2, 4, 5, 8)
    layer.append(prompt, prompt)
    sizes = []
    for _ in range(40):
        token = torch.randn(2, 4, 1, 8)
        keys, values = layer.append(token, token)
        sizes.append(layer.keys.shape[2])
    assert (
        keys.shape[2] == 45 and torch.equal(keys[:, :, :5], prompt) and torch.equal(values[:, :, -1:], token)
    )
    assert sorted(set(sizes)) == [16, 32, 64]  # doubled, not HUGE at the first step
    capped = LayerCache(capacity=20)
    for _ in range(20):
        capped.append(token, token)
    assert capped.keys.shape[2] == 20  # never past what the generation can use


def test_padded_decoder_steps_reserve_nothing_and_give_the_same_logits():
    """The padding mask and positions of left-padded prompts grow with the tokens too."""
    model = tiny("decoder", position="learned")
    ids, mask = prompts(model)
    with torch.inference_mode():
        small = make_steps(model, ids, mask, expand=2, use_cache=True, capacity=7 + 5)
        huge = make_steps(model, ids, mask, expand=2, use_cache=True, capacity=HUGE)
        sequence = ids.repeat_interleave(2, dim=0)
        for _ in range(5):
            a, b = small(sequence), huge(sequence)
            assert torch.equal(a, b)
            sequence = torch.cat((sequence, a.argmax(-1, keepdim=True)), dim=1)


@pytest.mark.parametrize("beams", [1, 3])
@pytest.mark.parametrize("arch", ["encoder-decoder", "decoder"])
def test_a_huge_max_new_tokens_costs_nothing_when_answers_end(monkeypatch, arch, beams):
    monkeypatch.setattr(memory, "available_bytes", lambda device: None)  # the worst case is not checked
    model = tiny(arch, position="t5-relative" if arch == "encoder-decoder" else "rope")
    ids, mask = prompts(model)
    # every token but the pad ends a row (beam search keeps (1 + eos ids) x beams candidates: at most all)
    ending = list(range(1, model.config.vocab_size))
    options = dict(num_beams=beams, eos_token_id=ending, pad_token_id=0, early_stopping=True)
    expected = generate(model, ids, mask, max_new_tokens=3, **options)
    assert torch.equal(generate(model, ids, mask, max_new_tokens=HUGE, **options), expected)


# ---- models too large for the memory -----------------------------------------------------------------


def test_build_model_refuses_a_config_too_large_before_allocating():
    with pytest.raises(ConfigError, match=r"d_model=2000000000.*needs about .*B of memory, but cpu has"):
        t2t.build_model(t2t.preset("t5-small", d_model=2_000_000_000))
    with pytest.raises(ConfigError, match=r"0\+10000 layers needs about"):
        t2t.build_model(t2t.preset("gpt2", n_decoder_layers=10_000))


def test_integer_fields_past_int64_are_one_line():
    with pytest.raises(ConfigError, match=f"d_ff={2**70} is out of range"):
        t2t.build_model(t2t.preset("t5-tiny", d_ff=2**70))


@pytest.mark.parametrize("name", ["t5-small", "gpt2", "bert-base", "llama-small", "t5-v1_1-tiny"])
def test_parameter_count_is_a_close_lower_bound(name):
    cfg = t2t.preset(name)
    with torch.device("meta"):
        exact = model_class(cfg)(cfg).num_parameters()
    assert 0.98 * exact <= parameter_count(cfg) <= exact


def test_format_bytes():
    assert [memory.format_bytes(n) for n in (512, 1536, 2.5e9, 3.2e15, 1e21)] == [
        "512 B",
        "1.54 KB",
        "2.5 GB",
        "3.2 PB",
        "1e+06 PB",
    ]


# ---- checkpoints of NaN weights, and configs edited after the weights --------------------------------


def _saved(tmp_path: Path, layout: str) -> Path:
    torch.manual_seed(0)
    model = t2t.build_model(t2t.preset("t5-tiny", vocab_size=96))  # d_model 32, d_ff 64, 4 heads
    return model.save_pretrained(tmp_path / layout, format=layout)


@pytest.mark.parametrize("layout", ["hf", "t2t"])
def test_non_finite_weights_are_refused_unless_asked(tmp_path, layout):
    model = t2t.build_model(t2t.preset("gpt2-tiny"))
    with torch.no_grad():
        model.decoder.layers[1].ffn.up.weight[3, 4] = math.nan
    directory = model.save_pretrained(tmp_path / layout, format=layout)
    with pytest.raises(CheckpointError, match=r"weight 'decoder.layers.1.ffn.up.weight' holds NaN values"):
        t2t.from_pretrained(directory)
    loaded = t2t.from_pretrained(directory, check_finite=False)
    assert math.isnan(loaded.decoder.layers[1].ffn.up.weight[3, 4].item())


@pytest.mark.parametrize(
    ("layout", "key", "field", "value"),
    [
        ("hf", "d_ff", "d_ff", 128),
        ("t2t", "d_ff", "d_ff", 128),
        ("hf", "vocab_size", "vocab_size", 128),
        ("t2t", "d_model", "d_model", 64),
        ("hf", "num_heads", "num_heads", 8),
    ],
)
def test_config_edited_after_the_weights_names_the_field(tmp_path, layout, key, field, value):
    directory = _saved(tmp_path, layout)
    config_file = directory / ("config.json" if layout == "hf" else "t2t_config.json")
    config = json.loads(config_file.read_text())
    original = config[key]
    config_file.write_text(json.dumps({**config, key: value}))
    with pytest.raises(CheckpointError) as caught:
        t2t.from_pretrained(directory)
    message = str(caught.value)
    assert "in the checkpoint but the config builds" in message and "\n" not in message
    assert f"{config_file} says {field}={value} but the weights were made with {field}={original}" in message
