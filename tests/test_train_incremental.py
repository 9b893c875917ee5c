"""Incremental learning: the replay stream (share, exact resume) and the forgetting report."""

from __future__ import annotations

import json

import pytest
import torch

from t2t.train.incremental import forgetting, write_forgetting_report
from t2t.train.replay import ReplayStream
from test_train_support import ToyStream


def _tagged(seed: int) -> ToyStream:
    return ToyStream(2, seed=seed)


def _source(batch: dict[str, torch.Tensor], main: ToyStream) -> str:
    return (
        "main"
        if any(torch.equal(batch["input_ids"], main.batch(i)["input_ids"]) for i in range(60))
        else "replay"
    )


def test_replay_share_and_exact_resume():
    stream = ReplayStream(_tagged(1), _tagged(2), share=0.25)
    first = [next(stream) for _ in range(40)]
    assert stream.replayed == 10
    state = stream.state_dict()
    following = [next(stream)["input_ids"] for _ in range(10)]
    again = ReplayStream(_tagged(1), _tagged(2), share=0.25)
    again.load_state_dict(state)
    assert all(torch.equal(a, next(again)["input_ids"]) for a in following)
    kinds = [_source(b, _tagged(1)) for b in first]
    assert kinds[:8] == ["main", "main", "main", "replay"] * 2  # spread evenly


def test_share_zero_never_replays_and_one_always_does():
    none = ReplayStream(_tagged(1), _tagged(2), share=0.0)
    [next(none) for _ in range(20)]
    every = ReplayStream(_tagged(1), _tagged(2), share=1.0)
    [next(every) for _ in range(20)]
    assert none.replayed == 0 and every.replayed == 20


def test_forgetting_report(tmp_path):
    before = {"sentiment/accuracy": 80.0, "reasoning/exact_match": 50.0}
    after = {"sentiment/accuracy": 60.0, "reasoning/exact_match": 55.0}
    rows = write_forgetting_report(tmp_path, before, after, share=0.25)
    assert rows == forgetting(before, after)
    assert rows["sentiment/accuracy"]["change"] == pytest.approx(-20.0)
    saved = json.loads((tmp_path / "forgetting.json").read_text())
    assert saved["replay_share"] == 0.25 and saved["metrics"]["reasoning/exact_match"]["after"] == 55.0
    assert "| sentiment/accuracy | 80.00 | 60.00 | -20.00 |" in (tmp_path / "forgetting.md").read_text()
