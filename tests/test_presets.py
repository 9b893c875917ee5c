"""Parameter counts of the published presets against the published models (built on the meta device:
nothing is allocated, so even t5-large and bert-large count in milliseconds)."""

import pytest
import torch

from t2t import build_model, preset
from t2t.model.build import model_class


def count(name: str) -> int:
    cfg = preset(name)
    with torch.device("meta"):
        model = model_class(cfg)(cfg)
    return model.num_parameters()


@pytest.mark.parametrize(
    ("name", "published"),
    [
        ("t5-small", 60_506_624),  # google-t5/t5-small
        ("t5-base", 222_903_552),  # google-t5/t5-base
        ("t5-large", 737_668_096),  # google-t5/t5-large
        ("t5-v1_1-small", 76_961_152),  # google/t5-v1_1-small
        ("flan-t5-small", 76_961_152),  # google/flan-t5-small
        ("flan-t5-base", 247_577_856),  # google/flan-t5-base
        ("bert-base", 110_106_428),  # bert-base-uncased as BertForPreTraining (BertModel: 109,482,240)
        ("bert-large", 336_226_108),  # bert-large-uncased as BertForPreTraining (BertModel: 335,141,888)
        ("gpt2", 124_439_808),  # openai-community/gpt2
        ("llama-small", 134_515_008),  # HuggingFaceTB/SmolLM-135M
    ],
)
def test_published_parameter_counts(name, published):
    assert count(name) == published


def test_headline_sizes_match_the_papers():
    # The rounded sizes the papers and model cards quote.
    assert round(count("t5-small") / 1e6, 1) == 60.5
    assert round(count("t5-base") / 1e6) == 223
    assert round(count("bert-base") / 1e6) == 110
    assert round(count("bert-large") / 1e6) == 336  # 335M without the pre-training heads
    assert round(count("gpt2") / 1e6) == 124


@pytest.mark.parametrize("name", ["t5-tiny", "t5-v1_1-tiny", "bert-tiny", "gpt2-tiny", "llama-tiny"])
def test_tiny_presets_are_tiny_and_run(name):
    model = build_model(preset(name))
    assert model.num_parameters() < 100_000
