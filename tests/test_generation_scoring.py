"""Candidate scoring: log-likelihoods equal to transformers' teacher-forced ones, batched like unbatched,
and picking the best candidate string with a real tokenizer."""

from __future__ import annotations

import pytest
import torch

from generation_helpers import hf_and_t2t, left_padded, right_padded, tiny_model_for, train_tokenizer
from t2t.errors import T2TError
from t2t.generation import pick_best, rank_candidates, score


def hf_loglik(hf_model, kind: str, prompt: list[int], target: list[int]) -> float:
    """Summed log p(target | prompt) from a plain transformers forward pass."""
    with torch.no_grad():
        if kind == "seq2seq":
            logits = hf_model(input_ids=torch.tensor([prompt]), labels=torch.tensor([target])).logits[0]
            return float(torch.log_softmax(logits, -1)[torch.arange(len(target)), target].sum())
        logits = hf_model(input_ids=torch.tensor([prompt + target])).logits[0]
        log_probs = torch.log_softmax(logits, -1)
        return float(sum(log_probs[len(prompt) - 1 + i, t] for i, t in enumerate(target)))


@pytest.mark.parametrize("name", ["t5", "t5-v1_1", "gpt2", "llama-gqa"])
def test_scores_equal_transformers_log_likelihood(name, tmp_path):
    hf_model, kind, model = hf_and_t2t(name, 0, tmp_path / name)
    torch.manual_seed(3)
    make = right_padded if kind == "seq2seq" else left_padded
    ids, mask = make(128, batch=2, length=6, pad_id=model.config.pad_id)
    lengths = [[3, 1, 4], [2, 4, 4]]
    cands = torch.full((2, 3, 4), -100)
    for b in range(2):
        for c in range(3):
            cands[b, c, : lengths[b][c]] = torch.randint(3, 127, (lengths[b][c],))
    got = model.score(ids, cands, mask)
    assert got.shape == (2, 3)
    # Relative tolerance: the re-randomised weights give logits of magnitude ~20, where fp32 forward
    # passes of the two libraries already differ by ~2e-5 relative.
    for b in range(2):
        prompt = ids[b][mask[b].bool()].tolist()
        for c in range(3):
            target = cands[b, c, : lengths[b][c]].tolist()
            assert got[b, c].item() == pytest.approx(hf_loglik(hf_model, kind, prompt, target), rel=1e-4)
    # one candidate per input, and the mean over tokens
    single = model.score(ids, cands[:, 0], mask)
    assert torch.allclose(single, got[:, 0])
    mean = model.score(ids, cands, mask, reduction="mean")
    assert torch.allclose(mean, got / torch.tensor(lengths), atol=1e-6)


def test_candidate_mask_is_the_same_as_minus_100_padding(tmp_path):
    _, _, model = hf_and_t2t("t5", 1, tmp_path / "t5")
    ids = torch.randint(3, 127, (2, 5))
    cands = torch.randint(3, 127, (2, 4))
    keep = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    assert torch.allclose(
        model.score(ids, cands, candidate_mask=keep), model.score(ids, cands.masked_fill(keep == 0, -100))
    )


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(tmp_path_factory.mktemp("tok"), "sentencepiece", 400)


@pytest.mark.parametrize("arch", ["encoder-decoder", "decoder"])
def test_pick_best_takes_the_highest_scored_string(tokenizer, arch):
    model = tiny_model_for(tokenizer, arch)
    prompts = ["classify: the quick brown fox", "question: where is Zürich"]
    options = [["positive", "negative", "neutral"], ["data", "house Haus", "text", "über"]]
    ranked = rank_candidates(model, tokenizer, prompts, options)
    assert [len(r) for r in ranked] == [3, 4]
    best = pick_best(model, tokenizer, prompts, options)
    assert best == [o[max(range(len(r)), key=r.__getitem__)] for o, r in zip(options, ranked)]
    assert pick_best(model, tokenizer, prompts[1], options[1]) == best[1]
    # the scores are those of the token ids (T5 candidates end with </s>, decoder-only ones are bare)
    encoder_decoder = arch == "encoder-decoder"
    prompt = tokenizer.encode(prompts[0])
    for option, value in zip(options[0], ranked[0]):
        target = tokenizer.encode(option, add_special_tokens=encoder_decoder)
        assert (target[-1] == tokenizer.eos_id) == encoder_decoder
        assert value == pytest.approx(float(score(model, [prompt], [target])), abs=1e-4)


@pytest.mark.parametrize(
    ("candidates", "message"),
    [
        (torch.full((2, 3), -100), "candidate 0 of input 0 has no tokens"),
        (torch.full((3, 2), 5), r"candidate_ids should be \[batch=2"),
        (torch.full((2, 2), 500), "outside the vocabulary"),
    ],
)
def test_bad_candidates(candidates, message, tmp_path):
    _, _, model = hf_and_t2t("gpt2", 0, tmp_path / "gpt2")
    with pytest.raises(T2TError, match=message):
        model.score(torch.randint(3, 100, (2, 4)), candidates)
    with pytest.raises(T2TError, match="reduction='max'"):
        model.score(torch.randint(3, 100, (2, 4)), torch.full((2, 2), 5), reduction="max")
