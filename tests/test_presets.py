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


def bert_model_count(name: str) -> int:
    """BertModel's share (embeddings, encoder, pooler): the masked-LM and next-sentence heads left out."""
    cfg = preset(name)
    with torch.device("meta"):
        model = model_class(cfg)(cfg)
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith(("mlm.", "nsp.")))


def test_bert_model_counts_without_the_pretraining_heads():
    assert bert_model_count("bert-base") == 109_482_240  # google-bert/bert-base-uncased as BertModel
    assert bert_model_count("bert-large") == 335_141_888  # google-bert/bert-large-uncased as BertModel


def test_headline_sizes_match_the_papers():
    # The rounded sizes the papers and model cards quote (BERT's paper counts BertModel, no heads).
    assert round(count("t5-small") / 1e5) == 605  # 60.5M
    assert round(count("t5-base") / 1e6) == 223
    assert round(bert_model_count("bert-base") / 1e6) == 109 and round(count("bert-base") / 1e6) == 110
    assert round(bert_model_count("bert-large") / 1e6) == 335
    assert round(count("gpt2") / 1e6) == 124


TINY = ["t5-tiny", "t5-v1_1-tiny", "bert-tiny", "gpt2-tiny", "llama-tiny"]


@pytest.mark.parametrize("name", TINY)
def test_tiny_presets_are_tiny_and_run(name):
    cfg = preset(name)
    model = build_model(cfg).eval()
    assert model.num_parameters() < 100_000
    torch.manual_seed(0)
    ids = torch.randint(3, cfg.vocab_size, (2, 7))
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    kwargs = dict(attention_mask=mask, labels=labels)
    if cfg.arch == "encoder":
        kwargs["token_type_ids"] = (torch.arange(7) >= 3).long().expand(2, 7)
    with torch.no_grad():
        out = model(ids, **kwargs)
    assert out.logits.shape == (2, 7, cfg.vocab_size)
    assert torch.isfinite(out.logits).all()
    assert torch.isfinite(out.loss) and float(out.loss) > 0
