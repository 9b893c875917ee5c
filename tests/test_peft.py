"""t2t.peft: LoRA on the slices of fused matrices, bottleneck adapters, merging, and adapter directories
exchanged with Hugging Face PEFT (the test-only oracle) in both directions."""

from __future__ import annotations

import peft
import pytest
import torch

import t2t
from generation_helpers import greedy_margin, hf_and_t2t, hf_generate
from t2t.errors import ConfigError, T2TError
from t2t.peft import (
    AdapterLinear,
    LoRALinear,
    PeftConfig,
    apply_peft,
    load_adapter,
    load_peft,
    merge,
    save_adapter,
)
from t2t.peft.files import PEFT_CONFIG, T2T_ADAPTER_CONFIG
from t2t.peft.lora import plain_linear
from t2t.train import TrainConfig

from hf_reference import reference, reference_inputs

TOL = 1e-4
pytestmark = [
    pytest.mark.filterwarnings("ignore:fan_in_fan_out:UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


def tiny(preset: str = "t5-tiny", seed: int = 0, **fields) -> t2t.T2TModel:
    torch.manual_seed(seed)
    return t2t.build_model(t2t.preset(preset).replace(dropout=0.0, **fields)).eval()


def randomise(model: torch.nn.Module, seed: int = 1, std: float = 0.3) -> None:
    """Give every LoRA B (zero when new) and every adapter `up` values, so the updates show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_B." in name or ".adapter_up." in name:
                p.copy_(torch.randn(p.shape, generator=g) * std)


def hf_pair(name: str, tmp_path) -> tuple[torch.nn.Module, t2t.T2TModel]:
    """A transformers reference model and the same weights in t2t."""
    hf, _ = reference(name)
    hf.save_pretrained(tmp_path / "base")
    return hf, t2t.from_pretrained(tmp_path / "base")


def logits(out) -> torch.Tensor:
    for key in ("logits", "prediction_logits"):
        value = getattr(out, key, None)
        if value is not None:
            return value
    return out.last_hidden_state


def gap(a: torch.Tensor, b: torch.Tensor, real: torch.Tensor) -> float:
    return float(((a - b).abs() * real.bool()[..., None]).max())


# ------------------------------------------------------------------------------------------ targets
def test_lora_on_q_and_v_changes_exactly_those_rows_of_the_fused_matrices():
    model = tiny("t5-tiny")
    apply_peft(model, PeftConfig(method="lora", r=2, target=["q", "v"]))
    randomise(model)
    attn = model.decoder.layers[0].self_attn
    assert isinstance(attn.qkv, LoRALinear) and set(attn.qkv.lora_A) == {"q", "v"}
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        diff = (attn.qkv(x) - plain_linear(attn.qkv)(x)).abs().amax(dim=(0, 1))  # per output row
    q, k = attn.qkv.parts["q"], attn.qkv.parts["k"]
    assert float(diff[k[0] : k[1]].max()) == 0.0  # the key rows are untouched
    assert float(diff[q[0] : q[1]].min()) > 0 and float(diff[k[1] :].min()) > 0
    cross = model.decoder.layers[0].cross_attn
    assert set(cross.q.lora_A) == {"q"} and set(cross.kv.lora_A) == {"v"}  # as PEFT's q, v on T5
    assert type(attn.out) is torch.nn.Linear and type(model.decoder.layers[0].ffn.up) is torch.nn.Linear


def test_gate_and_up_are_the_halves_of_a_gated_feed_forward():
    model = tiny("t5-v1_1-tiny")
    apply_peft(model, PeftConfig(method="lora", r=2, target=["up"]))
    randomise(model)
    up = model.encoder.layers[0].ffn.up
    x = torch.randn(3, 32)
    with torch.no_grad():
        diff = (up(x) - plain_linear(up)(x)).abs().amax(0)
    assert float(diff[:48].max()) == 0.0 and float(diff[48:].min()) > 0  # [gate; up]: only up moved
    with pytest.raises(ConfigError, match="not gated: use ffn_in"):
        apply_peft(tiny("t5-tiny"), PeftConfig(method="lora", target=["gate"]))


def test_a_new_adapter_computes_what_the_base_did():
    ids = torch.randint(3, 128, (2, 7))
    for method in ("lora", "adapter"):
        base = tiny("gpt2-tiny")
        expected = base(ids).logits
        apply_peft(base, PeftConfig(method=method, target=["all"] if method == "lora" else None))
        assert torch.equal(base(ids).logits, expected)


def test_config_errors_name_the_fix():
    with pytest.raises(ConfigError, match="did you mean 'q'"):
        PeftConfig(method="lora", target=["qq"])
    with pytest.raises(ConfigError, match="o and ffn_out"):
        PeftConfig(method="adapter", target=["q"])
    with pytest.raises(ConfigError, match="out of range"):
        PeftConfig(method="lora", r=0)
    assert PeftConfig(method="lora", target=["attention", "ffn_out"]).parts == ["q", "k", "v", "o", "ffn_out"]
    with pytest.raises(ConfigError, match=r"peft\.method"):
        TrainConfig.from_dict({"peft": {"method": "prefix"}})


def test_only_the_adapter_and_the_new_head_train():
    model = tiny("bert-tiny", head="classification", num_labels=3)
    apply_peft(model, PeftConfig(method="lora", target=["q", "v"]))
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"encoder", "classifier", "pooler"}
    assert all(
        ".lora_" in n for n, p in model.named_parameters() if p.requires_grad and n.startswith("encoder")
    )


# ------------------------------------------------------------------------------- PEFT, both directions
EXPORTS = [
    ("t5", ["q", "v"]),
    ("t5-v1_1", ["all"]),
    ("gpt2", ["q", "v"]),
    ("gpt2", ["all"]),
    ("llama-gqa", ["q", "k", "v", "o", "gate", "up", "ffn_out"]),
    ("bert-pretraining", ["q", "v", "ffn_in"]),
]


@pytest.mark.parametrize(("name", "target"), EXPORTS, ids=[f"{n}-{'-'.join(t)}" for n, t in EXPORTS])
def test_peft_loads_what_t2t_saves_with_the_same_logits(tmp_path, name, target):
    hf, model = hf_pair(name, tmp_path)
    args, real = reference_inputs(name, 0)
    with torch.no_grad():
        before = logits(model(**args))
    apply_peft(model, PeftConfig(method="lora", r=4, alpha=8, target=target))
    randomise(model)
    written = save_adapter(model, tmp_path / "adapter")
    assert {PEFT_CONFIG, "adapter_model.safetensors"} <= set(written)
    oracle = peft.PeftModel.from_pretrained(hf, tmp_path / "adapter").eval()
    with torch.no_grad():
        ours, theirs = logits(model(**args)), logits(oracle(**args))
    assert gap(ours, before, real) > 1e-2  # the adapter matters
    assert gap(ours, theirs, real) < TOL


IMPORTS = [
    ("t5", dict(target_modules=["q", "v", "o", "wi"])),
    ("gpt2", dict(target_modules=["c_attn", "c_proj"])),  # c_attn: one LoRA over the fused q, k, v
    ("gpt2", dict(target_modules=["c_fc"], rank_pattern={"c_fc": 2}, alpha_pattern={"c_fc": 3})),
    (
        "llama-gqa",
        dict(target_modules=["q_proj", "k_proj", "v_proj", "gate_proj", "down_proj"], use_rslora=True),
    ),
    ("bert-pretraining", dict(target_modules=["query", "value", "dense"])),
]


@pytest.mark.parametrize(("name", "options"), IMPORTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(IMPORTS)])
def test_t2t_loads_what_peft_saves_with_the_same_logits(tmp_path, name, options):
    hf, model = hf_pair(name, tmp_path)
    torch.manual_seed(3)
    config = peft.LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, **options)  # B random, not zero
    oracle = peft.get_peft_model(hf, config).eval()
    oracle.save_pretrained(tmp_path / "adapter")
    load_peft(model, tmp_path / "adapter")
    args, real = reference_inputs(name, 1)
    with torch.no_grad():
        assert gap(logits(model.eval()(**args)), logits(oracle(**args)), real) < TOL


def test_a_bert_head_and_its_adapter_round_trip_through_peft(tmp_path):
    import transformers

    model = tiny("bert-tiny", head="classification", num_labels=3)
    model.save_pretrained(tmp_path / "base")  # BertForSequenceClassification
    apply_peft(model, PeftConfig(method="lora", r=4, target=["q", "v"]))
    randomise(model)
    with torch.no_grad():  # as after training: the head has moved too
        model.classifier.weight.add_(1.0)
        model.pooler.dense.bias.add_(0.5)
    save_adapter(model, tmp_path / "adapter")
    ids = torch.randint(3, 128, (2, 9))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        ours = model(ids, mask).logits
        hf = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "base").eval()
        theirs = peft.PeftModel.from_pretrained(hf, tmp_path / "adapter").eval()(
            input_ids=ids, attention_mask=mask
        )
        back = (
            load_peft(t2t.from_pretrained(tmp_path / "base"), tmp_path / "adapter").eval()(ids, mask).logits
        )
    assert float((ours - theirs.logits).abs().max()) < TOL
    assert float((ours - back).abs().max()) < TOL


def test_unsupported_peft_adapters_are_one_line_errors(tmp_path):
    hf, model = hf_pair("t5", tmp_path)
    peft.get_peft_model(hf, peft.LoraConfig(r=2, target_modules=["q"], use_dora=True)).save_pretrained(
        tmp_path / "a"
    )
    with pytest.raises(T2TError, match="use_dora=True; t2t does not support DoRA"):
        load_peft(model, tmp_path / "a")
    with pytest.raises(T2TError, match="not an adapter directory"):
        load_adapter(model, tmp_path)


# ------------------------------------------------------------------------------------------- merging
@pytest.mark.parametrize("name", ["t5", "gpt2", "llama-gqa"])
def test_merged_and_unmerged_logits_agree(tmp_path, name):
    _, model = hf_pair(name, tmp_path)
    base_keys = set(model.state_dict())
    apply_peft(model, PeftConfig(method="lora", r=4, target=["all"]))
    randomise(model)
    args, real = reference_inputs(name, 2)
    with torch.no_grad():
        unmerged = logits(model(**args))
        merge(model)
        merged = logits(model(**args))
    assert gap(unmerged, merged, real) < 1e-5
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert set(model.state_dict()) == base_keys and model.peft_config is None
    assert all(p.requires_grad for p in model.parameters())  # a plain model again


def test_merge_checks_the_update_is_finite_first():
    model = tiny("t5-tiny")
    apply_peft(model, PeftConfig(method="lora", target=["q", "v"]))
    with torch.no_grad():
        model.decoder.layers[1].self_attn.qkv.lora_B["v"][0, 0] = float("inf")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(T2TError, match="not finite; the weights were not merged"):
        merge(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items() if "lora_B" not in k)


# ----------------------------------------------------------------------------------------- generation
@pytest.mark.parametrize("name", ["t5", "gpt2"])
def test_greedy_tokens_agree_unmerged_merged_and_transformers_peft(tmp_path, name):
    hf, kind, model = hf_and_t2t(name, 0, tmp_path / "base")
    apply_peft(model, PeftConfig(method="lora", r=4, target=["q", "v", "ffn_out"]))
    randomise(model, std=0.5)
    save_adapter(model, tmp_path / "adapter")
    oracle = peft.PeftModel.from_pretrained(hf, tmp_path / "adapter").eval()
    torch.manual_seed(5)
    ids = torch.randint(3, 120, (3, 6))
    mask = torch.ones_like(ids)
    pad = model.config.pad_id
    expected = hf_generate(
        oracle,
        kind,
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=8,
        eos_token_id=None,
        pad_id=pad,
        output_scores=True,
        return_dict_in_generate=True,
    )
    assert greedy_margin(expected.scores) > 1e-4, "near-tie in the reference: pick another seed"
    unmerged = model.generate(ids, mask, max_new_tokens=8, eos_token_id=None)  # KV cache, decoding kernels
    merged = merge(model).generate(ids, mask, max_new_tokens=8, eos_token_id=None)
    assert torch.equal(unmerged, expected.sequences)
    assert torch.equal(merged, expected.sequences)


# ------------------------------------------------------------------------------------ bottleneck adapters
def test_adapters_follow_attention_and_feed_forward_and_save_in_the_t2t_layout(tmp_path):
    model = tiny("t5-tiny")
    apply_peft(model, PeftConfig(method="adapter", bottleneck=8))
    wrapped = [n for n, m in model.named_modules() if isinstance(m, AdapterLinear)]
    assert len(wrapped) == 2 * 2 + 3 * 2  # encoder: self + ffn; decoder: self + cross + ffn; 2 layers each
    assert all(n.endswith((".out", ".ffn.down")) for n in wrapped)
    randomise(model)
    written = save_adapter(model, tmp_path / "adapter")
    assert written == [T2T_ADAPTER_CONFIG, "t2t_adapter.safetensors"]  # PEFT has no such adapter
    ids = torch.randint(3, 128, (2, 6))
    again = load_adapter(tiny("t5-tiny"), tmp_path / "adapter")
    with torch.no_grad():
        assert torch.equal(again(ids, labels=ids).logits, model(ids, labels=ids).logits)
    assert merge(again).peft_config is not None  # not linear: it stays


# ------------------------------------------------------------------------------ activation checkpointing
def _grads(model: torch.nn.Module, batch: dict, seed: int) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    model(**batch).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(("preset", "lora"), [("t5-tiny", False), ("gpt2-tiny", False), ("llama-tiny", True)])
def test_activation_checkpointing_gives_identical_gradients(preset, lora):
    from t2t.model.transformer import set_activation_checkpointing

    torch.manual_seed(0)
    model = t2t.build_model(t2t.preset(preset).replace(dropout=0.2)).train()  # dropout: masks are replayed
    if lora:
        apply_peft(model, PeftConfig(method="lora", dropout=0.1, target=["all"]))
        randomise(model)
    ids = torch.randint(3, 120, (3, 10))
    batch = {"input_ids": ids, "labels": ids}
    plain = _grads(model, batch, seed=7)
    set_activation_checkpointing(model, True)
    recomputed = _grads(model, batch, seed=7)
    assert plain.keys() == recomputed.keys() and len(plain) > 0
    assert all(torch.equal(plain[n], recomputed[n]) for n in plain)
