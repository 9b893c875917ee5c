"""BERT's fine-tuning heads and GPT's extract-token head: parity with the transformers classes, round
trips, and moving a pre-trained backbone under a new head."""

import pytest
import torch
import transformers as tf

import t2t
from t2t.model.build import with_head

from helpers import padded_batch

_BERT = dict(
    vocab_size=128,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=64,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
_GPT2 = dict(
    vocab_size=128,
    n_embd=32,
    n_layer=2,
    n_head=4,
    n_positions=64,
    resid_pdrop=0.0,
    embd_pdrop=0.0,
    attn_pdrop=0.0,
    bos_token_id=127,
    eos_token_id=127,
    summary_first_dropout=0.0,
)


def load(hf_model, tmp_path):
    hf_model.save_pretrained(tmp_path / "hf")
    return t2t.from_pretrained(tmp_path / "hf")


def close(a, b) -> bool:
    return torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize(("labels", "problem"), [(3, None), (1, "regression")])
def test_sequence_classification_matches(labels, problem, tmp_path):
    hf_model = tf.BertForSequenceClassification(
        tf.BertConfig(
            **_BERT, num_labels=labels, problem_type=problem, id2label={i: f"c{i}" for i in range(labels)}
        )
    ).eval()
    model = load(hf_model, tmp_path)
    assert model.config.task_head == ("regression" if problem else "classification")
    ids, mask = padded_batch(128)
    target = torch.tensor([0.5, -1.0, 2.0]) if problem else torch.tensor([0, 2, 1])
    with torch.no_grad():
        a = hf_model(input_ids=ids, attention_mask=mask, labels=target)
        b = model(ids, attention_mask=mask, labels=target)
    assert close(a.logits, b.logits) and abs(a.loss.item() - b.loss.item()) < 1e-5
    if not problem:
        assert model.config.label_names == ["c0", "c1", "c2"]


def test_token_classification_matches(tmp_path):
    hf_model = tf.BertForTokenClassification(tf.BertConfig(**_BERT, num_labels=5)).eval()
    model = load(hf_model, tmp_path)
    ids, mask = padded_batch(128)
    tags = torch.randint(0, 5, ids.shape).masked_fill(mask == 0, -100)
    with torch.no_grad():
        a = hf_model(input_ids=ids, attention_mask=mask, labels=tags)
        b = model(ids, attention_mask=mask, labels=tags)
    keep = mask.bool()[..., None]
    assert close(a.logits * keep, b.logits * keep) and abs(a.loss.item() - b.loss.item()) < 1e-5


def test_span_qa_matches_including_answers_outside_the_window(tmp_path):
    hf_model = tf.BertForQuestionAnswering(tf.BertConfig(**_BERT)).eval()
    model = load(hf_model, tmp_path)
    ids, mask = padded_batch(128, length=12)
    start, end = torch.tensor([2, 5, 40]), torch.tensor([4, 7, 45])  # row 2: answer cut off by the window
    with torch.no_grad():
        a = hf_model(input_ids=ids, attention_mask=mask, start_positions=start, end_positions=end)
        b = model(ids, attention_mask=mask, start_positions=start, end_positions=end)
    assert close(a.start_logits, b.start_logits) and close(a.end_logits, b.end_logits)
    assert abs(a.loss.item() - b.loss.item()) < 1e-5


def test_multiple_choice_matches(tmp_path):
    hf_model = tf.BertForMultipleChoice(tf.BertConfig(**_BERT)).eval()
    model = load(hf_model, tmp_path)
    ids = torch.randint(3, 128, (2, 4, 9))
    with torch.no_grad():
        a = hf_model(input_ids=ids, labels=torch.tensor([1, 3]))
        b = model(ids, labels=torch.tensor([1, 3]))
    assert b.logits.shape == (2, 4)
    assert close(a.logits, b.logits) and abs(a.loss.item() - b.loss.item()) < 1e-5


def test_gpt2_double_heads_multiple_choice_matches(tmp_path):
    hf_model = tf.GPT2DoubleHeadsModel(tf.GPT2Config(**_GPT2)).eval()
    model = load(hf_model, tmp_path)
    ids = torch.randint(3, 127, (2, 3, 8))
    extract = torch.tensor([[7, 5, 6], [4, 7, 7]])
    with torch.no_grad():
        a = hf_model(input_ids=ids, mc_token_ids=extract)
        b = model(ids, extract_positions=extract)
    assert close(a.mc_logits, b.logits)


@pytest.mark.parametrize(
    "hf_class",
    [
        "BertForSequenceClassification",
        "BertForTokenClassification",
        "BertForQuestionAnswering",
        "BertForMultipleChoice",
    ],
)
def test_heads_round_trip_through_transformers(hf_class, tmp_path):
    hf_model = getattr(tf, hf_class)(tf.BertConfig(**_BERT, num_labels=3 if "Sequence" in hf_class else 2))
    model = load(hf_model, tmp_path)
    model.save_pretrained(tmp_path / "ours")
    again = getattr(tf, hf_class).from_pretrained(tmp_path / "ours")
    for key, value in hf_model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key


def test_with_head_keeps_the_backbone_and_starts_the_head_fresh():
    torch.manual_seed(0)
    pretrained = t2t.build_model(t2t.preset("bert-tiny", dropout=0.0)).eval()
    qa = with_head(pretrained, "span-qa").eval()
    clf = with_head(pretrained, "classification", num_labels=4, label_names=["a", "b", "c", "d"]).eval()
    ids, mask = padded_batch(128)
    with torch.no_grad():
        base = pretrained(ids, attention_mask=mask)
        assert close(qa(ids, attention_mask=mask).last_hidden_state, base.last_hidden_state)
        assert torch.equal(clf.pooler.dense.weight, pretrained.pooler.dense.weight)  # BERT keeps its pooler
        assert clf(ids, attention_mask=mask).logits.shape == (3, 4)


@pytest.mark.parametrize(
    ("head", "shape", "labels"),
    [
        ("classification", (3, 9), torch.tensor([0, 1, 1])),
        ("regression", (3, 9), torch.tensor([0.2, 0.4, 0.9])),
        ("similarity", (3, 2, 9), torch.tensor([1, 0, 1])),
        ("multiple-choice", (3, 4, 9), torch.tensor([3, 0, 2])),
    ],
)
def test_gpt_heads_train_with_the_auxiliary_lm_loss(head, shape, labels):
    extra = {"num_labels": 1} if head == "regression" else {}
    cfg = t2t.preset("gpt2-tiny", head=head, dropout=0.0, **extra)
    model = t2t.build_model(cfg)
    ids = torch.randint(3, 127, shape)
    out = model(ids, labels=labels)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert model.embed.weight.grad.abs().sum() > 0  # the LM loss reaches the tied embeddings
    without_lm = t2t.build_model(cfg.replace(lm_loss_weight=0.0))
    without_lm.load_state_dict(model.state_dict())
    assert without_lm(ids, labels=labels).loss < out.loss  # the auxiliary term adds a positive LM loss
