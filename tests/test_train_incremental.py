"""Incremental learning: the replay stream (share, exact resume) and the forgetting report."""

from __future__ import annotations

import json

import pytest
import torch

import t2t
from t2t.train import Trainer
from t2t.train.incremental import forgetting, write_forgetting_report
from t2t.train.replay import ReplayStream
from test_train_support import ToyStream, text_config, train_tokenizer, write_text_data


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


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Step 1 of incremental learning: a tiny T5 that has learnt the earlier task (colours)."""
    root = tmp_path_factory.mktemp("incremental")
    write_text_data(root)
    tok = train_tokenizer(root)
    cfg = text_config(
        root,
        tok,
        run_dir=str(root / "base"),
        max_steps=40,
        data={"task": "colours"},
        eval={"tasks": ["colours"], "limit": 6, "max_new_tokens": 4},
    )
    result = Trainer(cfg).fit()
    (record,) = result.eval_history
    return root, tok, result.last_checkpoint, record["colours/accuracy"]


def _incremental(base, run_dir, share):
    root, tok, checkpoint, _ = base
    cfg = text_config(
        root,
        tok,
        run_dir=str(run_dir),
        max_steps=30,
        model={"preset": None, "tokenizer": None, "checkpoint": str(checkpoint)},
        data={"task": "numbers", "replay": {"tasks": ["colours"], "share": share}},
        eval={"tasks": ["numbers"], "limit": 6, "max_new_tokens": 4},
    )
    trainer = Trainer(cfg)
    trainer.fit()
    report = json.loads((run_dir / "forgetting.json").read_text())
    return trainer, cfg, report


@pytest.mark.slow
def test_incremental_recipe_reports_forgetting_with_and_without_replay(base, tmp_path):
    """From the config to RUN_DIR/forgetting.json: the earlier task scored before (the base model) and
    after (the final checkpoint) training on the new task, with replay share 0 and 0.5."""
    from t2t.train.evaluation import task_scores

    base_accuracy = base[3]
    assert base_accuracy >= 50.0  # step 1 learnt something to forget
    rows = {}
    for share in (0.0, 0.5):
        trainer, cfg, report = _incremental(base, tmp_path / f"share-{share}", share)
        assert report["replay_share"] == share
        row = report["metrics"]["colours/accuracy"]
        assert row["before"] == base_accuracy
        final = t2t.from_pretrained(tmp_path / f"share-{share}" / "checkpoints" / "last")
        after = task_scores(final.eval(), trainer.tokenizer, ["colours"], cfg.eval)["colours/accuracy"]
        assert row["after"] == after and row["change"] == pytest.approx(after - base_accuracy)
        md = (tmp_path / f"share-{share}" / "forgetting.md").read_text()
        assert f"replay share {share:g}" in md and "| colours/accuracy |" in md
        if share:
            assert isinstance(trainer.stream, ReplayStream) and trainer.stream.replayed == 15  # of 30 batches
        else:
            assert not isinstance(trainer.stream, ReplayStream)
        rows[share] = row
    # without replay the earlier task is forgotten (100 -> 0 here); replaying half the batches keeps it
    assert rows[0.0]["change"] < 0 and rows[0.5]["after"] > rows[0.0]["after"]
