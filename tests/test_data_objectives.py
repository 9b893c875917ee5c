"""Pretraining objectives: T5 span corruption (exact semantics and statistics), prefix LM, BERT MLM/NSP."""

from __future__ import annotations

import pytest
import torch

from t2t.data.objectives import (
    causal_lm_chunks,
    mask_tokens,
    next_sentence_pairs,
    prefix_lm,
    random_spans_noise_mask,
    span_corruption,
    span_corruption_lengths,
)

SENTINEL, EOS = 32099, 1


def splice(inputs: list[int], targets: list[int]) -> list[int]:
    """Undo span corruption: each sentinel in the inputs is replaced by its span from the targets."""
    assert inputs[-1] == EOS and targets[-1] == EOS
    spans: dict[int, list[int]] = {}
    current = None
    for token in targets[:-1]:
        if token > SENTINEL - 100 and token <= SENTINEL:
            current = token
            spans[current] = []
        else:
            assert current is not None, "targets must start with a sentinel"
            spans[current].append(token)
    out: list[int] = []
    for token in inputs[:-1]:
        out.extend(spans.pop(token) if token in spans else [token])
    assert not spans, "every target span is used once"
    return out


def test_lengths_as_t5():
    assert span_corruption_lengths(512) == (568, 114)
    for length in (64, 128, 256, 512, 1024):
        tokens, targets = span_corruption_lengths(length)
        inputs, real_targets = span_corruption(
            list(range(2, 2 + tokens)), sentinel_start_id=SENTINEL, eos_id=EOS
        )
        assert (len(inputs), len(real_targets)) == (length, targets)


def test_span_corruption_layout():
    g = torch.Generator().manual_seed(1)
    tokens = list(range(100, 140))
    inputs, targets = span_corruption(tokens, sentinel_start_id=SENTINEL, eos_id=EOS, generator=g)
    inputs, targets = inputs.tolist(), targets.tolist()
    sentinels_in = [t for t in inputs if t > SENTINEL - 100 and t <= SENTINEL]
    assert sentinels_in == [SENTINEL - k for k in range(len(sentinels_in))]  # <extra_id_0>, <extra_id_1>, ...
    assert targets[0] == SENTINEL  # targets start with the first sentinel
    assert inputs[0] == tokens[0]  # the spans start with non-noise ...
    assert inputs[-2] == SENTINEL - len(sentinels_in) + 1  # ... and end with noise
    assert splice(inputs, targets) == tokens


@pytest.mark.parametrize(("density", "mean"), [(0.15, 3.0), (0.5, 8.0), (0.3, 1.0)])
def test_splice_back_and_statistics(density, mean):
    """Measured on the outputs (noise = targets less sentinels and EOS, spans = sentinels in the inputs)
    and on random_spans_noise_mask alone: both within 2% of the settings over 400 sequences."""
    g = torch.Generator().manual_seed(0)
    noise = spans = total = 0
    out_noise = out_spans = 0
    for trial in range(400):
        length = 200 + trial % 57
        tokens = torch.randint(3, 30000, (length,), generator=g).tolist()
        inputs, targets = span_corruption(
            tokens,
            noise_density=density,
            mean_noise_span_length=mean,
            sentinel_start_id=SENTINEL,
            eos_id=EOS,
            generator=g,
        )
        assert splice(inputs.tolist(), targets.tolist()) == tokens
        sentinels = int(((inputs > SENTINEL - 100) & (inputs <= SENTINEL)).sum())
        assert int(((targets > SENTINEL - 100) & (targets <= SENTINEL)).sum()) == sentinels
        out_noise += len(targets) - 1 - sentinels
        out_spans += sentinels
        mask = random_spans_noise_mask(length, density, mean, generator=g)
        noise += int(mask.sum())
        spans += int((mask & ~torch.cat([mask.new_zeros(1), mask[:-1]])).sum())
        total += length
    assert abs(out_noise / total - density) / density < 0.02
    assert abs(out_noise / out_spans - mean) / mean < 0.02
    assert abs(noise / total - density) / density < 0.02
    assert abs(noise / spans - mean) / mean < 0.02


def test_segmentation_is_uniform():
    """All masks with the given counts are equally likely: length 6, 2 noise tokens in 1 span ending the
    sequence -> only [0,0,0,0,1,1]; length 8 with 2 spans of 4 noise tokens: C(3,1)*C(3,1)=9 masks."""
    g = torch.Generator().manual_seed(0)
    assert random_spans_noise_mask(6, 1 / 3, 2.0, generator=g).tolist() == [False] * 4 + [True] * 2
    seen: dict[tuple, int] = {}
    for _ in range(9000):
        key = tuple(random_spans_noise_mask(8, 0.5, 2.0, generator=g).tolist())
        seen[key] = seen.get(key, 0) + 1
    assert len(seen) == 9
    assert all(abs(n / 1000 - 1) < 0.15 for n in seen.values())


def test_deterministic_with_a_generator():
    a = span_corruption(
        list(range(50)), sentinel_start_id=SENTINEL, eos_id=EOS, generator=torch.Generator().manual_seed(5)
    )
    b = span_corruption(
        list(range(50)), sentinel_start_id=SENTINEL, eos_id=EOS, generator=torch.Generator().manual_seed(5)
    )
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_prefix_lm_and_causal_chunks():
    g = torch.Generator().manual_seed(0)
    tokens = list(range(10, 30))
    splits = set()
    for _ in range(200):
        inputs, targets = prefix_lm(tokens, eos_id=EOS, generator=g, max_inputs=12, max_targets=15)
        assert inputs.tolist()[:-1] + targets.tolist()[:-1] == tokens
        assert inputs[-1] == targets[-1] == EOS
        assert len(inputs) - 1 <= 12 and len(targets) - 1 <= 15
        splits.add(len(inputs) - 1)
    assert splits == set(range(5, 13))
    chunks = causal_lm_chunks(list(range(7)), 3, eos_id=EOS)
    assert [c.tolist() for c in chunks] == [[0, 1, 2], [3, 4, 5], [6, EOS]]


def test_mask_tokens_80_10_10_never_specials():
    g = torch.Generator().manual_seed(0)
    specials, mask_id, vocab = [0, 1, 2, 3, 4], 4, 1000
    chosen = masked = randomised = kept = 0
    for _ in range(300):
        ids = [2, *torch.randint(5, vocab, (100,), generator=g).tolist(), 3, 0, 0]
        inputs, labels = mask_tokens(
            ids, special_ids=specials, mask_id=mask_id, vocab_size=vocab, generator=g
        )
        picked = labels != -100
        assert int(picked.sum()) == 15  # round(15% of the 100 non-special tokens)
        assert not picked[[0, 101, 102, 103]].any()
        assert inputs[[0, 101, 102, 103]].tolist() == [2, 3, 0, 0]
        assert labels[picked].tolist() == torch.tensor(ids)[picked].tolist()
        assert not torch.isin(inputs[picked & (inputs != mask_id)], torch.tensor(specials)).any()
        chosen += int(picked.sum())
        masked += int((inputs[picked] == mask_id).sum())
        same = inputs[picked] == torch.tensor(ids)[picked]
        kept += int(same.sum())
        randomised += int((~same & (inputs[picked] != mask_id)).sum())
    assert abs(masked / chosen - 0.8) < 0.03
    assert abs(kept / chosen - 0.1) < 0.02  # a random token equal to the original counts as kept (1/995)
    assert abs(randomised / chosen - 0.1) < 0.02


def _document(d: int, lengths: list[int]) -> list[list[int]]:
    """Document d's sentences; token = d * 1000 + its position in the document, so both are readable."""
    out, position = [], 0
    for length in lengths:
        out.append([d * 1000 + position + j for j in range(length)])
        position += length
    return out


@pytest.mark.parametrize(
    "lengths",
    [
        [3, 3, 3, 3, 3, 3],  # several sentences a pair
        [9, 9, 9],  # every sentence fills a pair alone: the last one has no next sentence
        [2, 5, 1, 7, 3],  # ragged, a one-token sentence inside
        [6],  # a one-sentence document
    ],
)
def test_next_sentence_pairs_half_real_half_other_document(lengths):
    """Over 600 documents the labels average 0.5 within 0.05 (2.4 to 3.7 standard errors for the
    600-1800 pairs each layout makes; pairing a lone last sentence only at random, as t2t once did, gives
    0.59, 0.61 and 1.0 on the last three); a real B is the text that follows A in the same document, a
    random B always another document's."""
    g = torch.Generator().manual_seed(0)
    labels = []
    for d in range(1, 601):
        other = _document(d + 5000, [4, 4, 4])

        def random_sentences(other=other):
            return other[int(torch.randint(len(other), (1,), generator=g)) :]

        for a, b, label in next_sentence_pairs(
            _document(d, lengths), random_sentences, max_tokens=9, generator=g
        ):
            assert a and b and len(a) + len(b) <= 9
            positions = [t - d * 1000 for t in a]
            assert all(0 <= p < sum(lengths) for p in positions)  # A is always this document's
            assert positions == list(range(positions[0], positions[0] + len(a)))  # and contiguous
            labels.append(label)
            if label == 0:
                after = [t - d * 1000 for t in b]
                assert after == list(range(after[0], after[0] + len(b)))  # B continues the text...
                gap = after[0] - positions[-1] - 1
                assert gap == 0 or len(a) + len(b) == 9  # ...right after A (unless A was cut to fit)
            else:
                assert all(t // 1000 == d + 5000 for t in b)
    assert len(labels) >= 600
    assert abs(sum(labels) / len(labels) - 0.5) < 0.05, sum(labels) / len(labels)


def test_a_one_token_last_sentence_makes_no_pair():
    calls = []
    pairs = next_sentence_pairs([[7]], lambda: calls.append(1) or [[9, 9]], max_tokens=9)
    assert pairs == [] and calls == []
