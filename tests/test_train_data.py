"""The data side of a run: data.shuffle, and the end-of-run line about truncated or skipped examples."""

from __future__ import annotations

import logging

import pytest

from t2t.train import Trainer, read_metrics
from test_train_support import text_config, train_tokenizer, write_text_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_text_data(root)
    return root, train_tokenizer(root)


def _rows(batches) -> list[tuple[int, ...]]:
    return [
        tuple(t for t, m in zip(ids, mask) if m)
        for b in batches
        for ids, mask in zip(b["input_ids"].tolist(), b["attention_mask"].tolist())
    ]


def test_data_shuffle_reorders_each_epoch_of_the_training_stream_only(data, tmp_path):
    root, tok = data
    epoch = 15  # 60 training examples in batches of 4
    streams = {}
    for shuffle in (False, True):
        cfg = text_config(
            root, tok, run_dir=str(tmp_path / str(shuffle)), data={"shuffle": shuffle}, eval={"loss": True}
        )
        trainer = Trainer(cfg)
        batches = [next(trainer.stream) for _ in range(2 * epoch)]
        validation = list(trainer.objective.eval_stream())
        streams[shuffle] = _rows(batches[:epoch]), _rows(batches[epoch:]), _rows(validation)
    (plain, plain_2, plain_val), (mixed, mixed_2, mixed_val) = streams[False], streams[True]
    assert plain == plain_2  # without shuffle every epoch is in file order
    assert sorted(mixed) == sorted(plain) and sorted(mixed_2) == sorted(
        plain
    )  # each epoch: every example once
    assert mixed != plain and mixed_2 != mixed  # in an order of its own
    assert mixed_val == plain_val  # the validation pass reads in file order either way


def test_a_run_that_truncated_examples_says_so_once_at_the_end(data, tmp_path, caplog):
    root, tok = data
    cfg = text_config(root, tok, run_dir=str(tmp_path / "run"), max_steps=3, data={"max_input_length": 8})
    trainer = Trainer(cfg)
    with caplog.at_level(logging.INFO, logger="t2t"):
        trainer.fit()
    stats = trainer.stream.stats
    assert stats["truncated_inputs"] > 0 and stats["truncated_targets"] == 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data:")]
    assert lines == [f"{stats.summary()} (raise data.max_input_length to keep more)"]
    assert f"truncated {stats['truncated_inputs']:,} inputs" in lines[0]
    (record,) = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "data"]
    assert record["step"] == 3 and record["truncated_inputs"] == stats["truncated_inputs"]
    assert record["examples"] == stats["examples"] == 12


def test_a_run_that_cut_nothing_prints_no_data_line(data, tmp_path, caplog):
    root, tok = data
    with caplog.at_level(logging.INFO, logger="t2t"):
        Trainer(text_config(root, tok, run_dir=str(tmp_path / "run"), max_steps=2)).fit()
    assert not [r for r in caplog.records if r.getMessage().startswith("data:")]
    assert not [r for r in read_metrics(tmp_path / "run") if r["kind"] == "data"]


def test_replayed_batches_count_in_the_stream_stats(data, tmp_path):
    root, tok = data
    cfg = text_config(
        root,
        tok,
        run_dir=str(tmp_path / "run"),
        max_steps=4,
        data={"max_input_length": 8, "replay": {"tasks": ["colours"], "share": 0.5}},
    )
    trainer = Trainer(cfg)
    trainer.fit()
    main, replay = trainer.stream.main.stats, trainer.stream.replay.stats
    merged = trainer.stream.stats
    assert merged["replayed"] == 2 and merged["batches"] == 4
    assert merged["examples"] == main["examples"] + replay["examples"] == 16
    assert merged["truncated_inputs"] == main["truncated_inputs"] + replay["truncated_inputs"] > 0
    assert merged.summary().startswith("data: 16 examples")
