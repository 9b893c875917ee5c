"""Configs refuse what makes no sense when they are built, with one line naming the key: NaN and
infinity, numbers YAML 1.1 reads as text, repeated keys, negative limits, objective options that would
hang or divide by zero, an empty config file; text-only records where targets are needed; a vocabulary
size no trainer can give."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
import typing
from pathlib import Path

import pytest

from t2t.cli.main import main
from t2t.config import ModelConfig
from t2t.configbase import InfFloat, StrictConfig, check_range, parse_override_value
from t2t.data import objectives as obj
from t2t.data import register_task
from t2t.data.features import check_objective_options
from t2t.data.registry import get_mixture, load_tasks_yaml
from t2t.data.stream import make_stream
from t2t.data.tasks import NoTargets, Task
from t2t.errors import ConfigError, DataError
from t2t.generation.config import GenerationConfig
from t2t.tokenizer.training import MAX_VOCAB_SIZE, TokenizerConfig, train_tokenizer
from t2t.train import TrainConfig
from t2t.train import config as train_config
from t2t.train.recipes import load_recipe
from t2t.utils.yamlio import dump_yaml, load_yaml


@pytest.fixture
def no_hang():
    """A bug here used to loop for ever: fail after a few seconds instead of hanging the suite."""

    def stop(signum, frame):
        raise TimeoutError("did not return: the check that should refuse the value did not run")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# ---------------------------------------------------------------------------------------- NaN, infinity
@pytest.mark.parametrize(
    "override, key",
    [
        ("optim.lr=.nan", "lr"),
        ("label_smoothing=.nan", "label_smoothing"),
        ("data.replay.share=.nan", "share"),
        ("optim.grad_clip=.nan", "grad_clip"),
        ("optim.grad_clip=.inf", "grad_clip"),
        ("optim.decay_rate=.nan", "decay_rate"),  # a field no range check looks at
        ("optim.betas=[.nan, 0.9]", "betas"),
        ("optim.lr=-.inf", "lr"),
        ("scheduled_sampling.k=.inf", "k"),
    ],
)
def test_nan_and_inf_are_refused_in_every_train_field(override, key):
    with pytest.raises(ConfigError, match=key) as err:
        TrainConfig().with_overrides([override])
    assert "nan" in str(err.value) or "inf" in str(err.value)


def _float_fields(cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    floats = (float, float | None)
    return [f.name for f in dataclasses.fields(cls) if hints[f.name] in floats]


def _strict_configs() -> list[type]:
    sections = [
        getattr(train_config, name)
        for name in dir(train_config)
        if isinstance(getattr(train_config, name), type)
        and issubclass(getattr(train_config, name), StrictConfig)
        and getattr(train_config, name) is not StrictConfig
    ]
    return [ModelConfig, GenerationConfig, TokenizerConfig, *sections]


@pytest.mark.parametrize("cls", _strict_configs(), ids=lambda c: c.__name__)
def test_no_float_field_of_any_config_takes_nan_or_inf(cls):
    fields = _float_fields(cls)
    if cls in (ModelConfig, TrainConfig, TokenizerConfig):
        assert fields, f"{cls.__name__} should have float fields"
    for name in fields:
        for bad in (math.nan, math.inf):
            with pytest.raises(ConfigError, match=name):
                cls.from_dict({name: bad})


def test_check_range_refuses_nan_always_and_inf_unless_allowed():
    with pytest.raises(ConfigError, match="not a number"):
        check_range("x", math.nan, 0.0, 1.0)
    with pytest.raises(ConfigError, match="not a number"):
        check_range("x", math.nan)  # no bounds at all
    with pytest.raises(ConfigError, match="infinite"):
        check_range("x", math.inf, 0.0)
    check_range("x", math.inf, 0.0, allow_inf=True)
    with pytest.raises(ConfigError, match="out of range"):
        check_range("x", -math.inf, 0.0, allow_inf=True)


def test_a_field_may_opt_in_to_infinity_but_never_to_nan():
    @dataclasses.dataclass
    class Budget(StrictConfig):
        seconds: InfFloat = math.inf
        rate: float = 1.0

    assert Budget.from_dict({"seconds": math.inf}).seconds == math.inf
    assert Budget.from_dict({"seconds": 3}).seconds == 3.0
    with pytest.raises(ConfigError, match="seconds"):
        Budget.from_dict({"seconds": math.nan})
    with pytest.raises(ConfigError, match="rate"):
        Budget.from_dict({"rate": math.inf})


def test_nan_from_json_is_refused_too(tmp_path):
    path = tmp_path / "model.json"
    path.write_text('{"dropout": NaN}')
    with pytest.raises(ConfigError, match="dropout"):
        ModelConfig.load(path)


def test_cli_nan_override_is_one_line_and_status_2(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"run_dir: {tmp_path / 'run'}\n")
    assert main(["train", "--config", str(recipe), "optim.lr=.nan", "--dry-run"]) == 2
    assert "optim.lr=nan" in _one_error_line(capsys)


# ---------------------------------------------------------------------------------------------- numbers
@pytest.mark.parametrize(
    "text, value",
    [
        ("3e-4", 3e-4),
        ("1e6", 1e6),
        ("1E-3", 1e-3),
        ("1.5e3", 1500.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("1_000", 1000),
        ("1_000.5", 1000.5),
        ("-2", -2),
        ("+3.0", 3.0),
        ("010", 10),  # decimal, not YAML 1.1's octal 8
        ("0x1f", 31),
        (".inf", math.inf),
        ("-.inf", -math.inf),
    ],
)
def test_every_number_form_is_a_number(text, value):
    parsed = parse_override_value(text)
    assert parsed == value and type(parsed) is type(value)
    assert load_yaml(f"x: {text}") == {"x": value}


@pytest.mark.parametrize("text", ["1:30", "1.2.3", "1__0", "1_", "e5", "abc", "0x", "2e"])
def test_things_that_are_not_numbers_stay_text(text):
    assert parse_override_value(text) == text


def test_nan_reads_as_nan():
    assert math.isnan(parse_override_value(".nan"))


def test_numbers_in_a_train_yaml_and_in_overrides(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("max_steps: 1e3\noptim:\n  lr: 3e-4\n  weight_decay: 1E-2\n")
    cfg = TrainConfig.load(path)
    assert (cfg.max_steps, cfg.optim.lr, cfg.optim.weight_decay) == (1000, 3e-4, 1e-2)
    assert type(cfg.max_steps) is int
    cfg = cfg.with_overrides(["optim.weight_decay=0", "optim.lr=1e6", "max_steps=2_000"])
    assert (cfg.optim.lr, cfg.max_steps) == (1e6, 2000)
    with pytest.raises(ConfigError, match=r"weight_decay=0.5 times lr=1000000.0 is at least 1"):
        cfg.with_overrides(["optim.weight_decay=0.5"])  # decoupled decay would flip every weight
    with pytest.raises(ConfigError, match=r"max_steps=1.5 should be an integer"):
        cfg.with_overrides(["max_steps=1.5"])


def test_numbers_in_a_finetune_recipe_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("data: {train: builtin:sentiment/train.tsv}\nlearning_rate: 5e-5\n")
    assert load_recipe(path).optim.lr == 5e-5  # a t2t 0.1 recipe key, read as optim.lr


def test_numbers_in_a_tasks_yaml(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"inputs": "x", "targets": "y"}\n')
    (tmp_path / "tasks.yaml").write_text(
        "tasks:\n  - {name: robust_a, source: a.jsonl}\n"
        "mixtures:\n  - {name: robust_mix, tasks: [robust_a], rate: temperature, temperature: 2e0}\n"
    )
    load_tasks_yaml(tmp_path / "tasks.yaml", overwrite=True)
    assert get_mixture("robust_mix").temperature == 2.0


def test_nan_mixture_temperature_is_refused(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"inputs": "x", "targets": "y"}\n')
    (tmp_path / "tasks.yaml").write_text(
        "tasks:\n  - {name: robust_b, source: a.jsonl}\n"
        "mixtures:\n  - {name: robust_mix_b, tasks: [robust_b], rate: temperature, temperature: .nan}\n"
    )
    with pytest.raises(ConfigError, match=r"mixtures\[0\].*temperature=nan"):
        load_tasks_yaml(tmp_path / "tasks.yaml", overwrite=True)


def test_a_string_that_looks_like_a_number_round_trips(tmp_path):
    cfg = TrainConfig(run_dir="1e6", device="010")
    assert "'1e6'" in dump_yaml(cfg.to_dict())
    cfg.save(tmp_path / "c.yaml")
    back = TrainConfig.load(tmp_path / "c.yaml")
    assert (back.run_dir, back.device) == ("1e6", "010")
    assert back == cfg


# ----------------------------------------------------------------------------------------- repeated keys
def test_a_repeated_yaml_key_names_the_file_line_and_key(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("max_steps: 5\nseed: 1\nmax_steps: 6\n")
    with pytest.raises(ConfigError) as err:
        TrainConfig.load(path)
    message = str(err.value)
    assert f"{path}:3:" in message and "'max_steps'" in message and "line 1" in message


def test_a_repeated_nested_key_is_caught_too(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("optim:\n  lr: 0.1\n  name: adamw\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"recipe.yaml:4: .*duplicate key 'lr'"):
        TrainConfig.load(path)


def test_merge_keys_may_still_override_what_they_bring():
    data = load_yaml("base: &b {lr: 1, wd: 2}\nrun:\n  <<: *b\n  lr: 3\n")
    assert data["run"] == {"lr": 3, "wd": 2}


def test_a_repeated_key_in_an_override_or_a_tasks_file_or_json(tmp_path):
    with pytest.raises(ConfigError, match=r"override data.options=.*duplicate key 'a'"):
        TrainConfig().with_overrides(["data.options={a: 1, a: 2}"])
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text("tasks:\n  - name: t\n    source: a.jsonl\n    name: u\n")
    with pytest.raises(ConfigError, match=r"tasks.yaml:4: .*duplicate key 'name'"):
        load_tasks_yaml(tasks)
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"d_model": 64}).replace("}", ', "d_model": 32}'))
    with pytest.raises(ConfigError, match="duplicate key 'd_model'"):
        ModelConfig.load(model)


# --------------------------------------------------------------------------------------------- limits
def test_a_negative_limit_train_is_refused():
    for override in ("data.limit_train=-1", "data.limit_eval=-5", "data.limit_train=0", "data.limit_test=-5"):
        value = override.partition("=")[2]
        with pytest.raises(
            ConfigError, match=rf"^data.limit_(train|eval)={value} is out of range \[1, inf\]"
        ):
            load_recipe("bert-sentiment", [override])  # data.limit_test: t2t 0.1's name of limit_eval
    assert load_recipe("bert-sentiment", ["data.limit_train=null"]).data.limit_train is None
    assert load_recipe("bert-sentiment", ["data.limit_train=200"]).data.limit_train == 200


# ---------------------------------------------------------------------------------- objective options
@pytest.mark.parametrize(
    "density, mean, message",
    [
        (2.0, 3.0, "noise_density=2.0 is out of range"),
        (1.0, 3.0, "noise_density=1.0 is out of range"),
        (0.0, 3.0, "noise_density=0.0 is out of range"),
        (math.nan, 3.0, "noise_density=nan should be a finite number"),
        (0.15, 0.0, "mean_noise_span_length=0.0 should be at least 1"),
        (0.15, 0.5, "mean_noise_span_length=0.5 should be at least 1"),
        (0.15, math.inf, "mean_noise_span_length=inf should be a finite number"),
        (0.15, "3", "mean_noise_span_length='3' should be a number"),
    ],
)
def test_span_corruption_functions_refuse_bad_settings(no_hang, density, mean, message):
    with pytest.raises(ConfigError, match=message):
        obj.span_corruption_lengths(512, density, mean)
    with pytest.raises(ConfigError, match=message):
        obj.random_spans_noise_mask(20, density, mean)
    with pytest.raises(ConfigError, match=message):
        obj.noise_spans(20, density, mean)
    with pytest.raises(ConfigError, match=message):
        obj.span_corruption(
            list(range(10, 30)),
            noise_density=density,
            mean_noise_span_length=mean,
            sentinel_start_id=99,
            eos_id=1,
        )


def test_span_corruption_still_works_at_the_edges(no_hang):
    assert obj.span_corruption_lengths(512, 0.15, 3.0) == (568, 114)  # T5's numbers
    assert obj.span_corruption_lengths(64, 0.99, 1.0)[0] > 0
    assert int(obj.random_spans_noise_mask(20, 0.5, 1.0).sum()) == 10


def test_other_objective_functions_refuse_bad_settings():
    with pytest.raises(ConfigError, match=r"mlm_probability=1.5"):
        obj.mask_tokens([5, 6, 7], special_ids=[0], mask_id=1, vocab_size=10, mlm_probability=1.5)
    with pytest.raises(ConfigError, match="mlm_probability=nan"):
        obj.mask_tokens([5, 6, 7], special_ids=[0], mask_id=1, vocab_size=10, mlm_probability=math.nan)
    with pytest.raises(ConfigError, match="max_tokens=0"):
        obj.next_sentence_pairs([[1, 2], [3, 4]], lambda: [[5]], max_tokens=0)
    with pytest.raises(ConfigError, match="max_length=0"):
        obj.causal_lm_chunks([1, 2, 3], 0, eos_id=None)


def test_objective_options_are_checked_by_name_and_range():
    assert check_objective_options("span_corruption", {})["noise_density"] == 0.15
    with pytest.raises(ConfigError, match=r"'noise_densty'.*did you mean 'noise_density'"):
        check_objective_options("span_corruption", {"noise_densty": 0.2})
    with pytest.raises(ConfigError, match="unknown option 'noise_density' for objective='causal_lm'"):
        check_objective_options("causal_lm", {"noise_density": 0.2})
    with pytest.raises(ConfigError, match="mlm_probability=0"):
        check_objective_options("mlm_nsp", {"mlm_probability": 0})
    with pytest.raises(ConfigError, match="nsp='yes' should be true or false"):
        check_objective_options("mlm_nsp", {"nsp": "yes"})
    with pytest.raises(ConfigError, match="decoder_start_id=-1"):
        check_objective_options("text2text", {"decoder_start_id": -1})


@pytest.mark.parametrize(
    "objective, options, message",
    [
        ("span_corruption", "{noise_density: 2}", "data.options: noise_density=2 is out of range"),
        ("span_corruption", "{mean_noise_span_length: 0}", "mean_noise_span_length=0 should be at least 1"),
        ("mlm_nsp", "{mlm_probability: .nan}", "mlm_probability=nan"),
        ("span_corruption", "{noise_densty: 0.3}", "did you mean 'noise_density'"),
    ],
)
def test_train_config_checks_options_before_anything_runs(no_hang, objective, options, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig().with_overrides([f"data.objective={objective}", f"data.options={options}"])


def test_cli_bad_noise_density_is_one_line_at_config_time(tmp_path, capsys, no_hang):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"run_dir: {tmp_path / 'run'}\nmodel: {{preset: t5-tiny}}\ndata: {{task: nothing}}\n")
    argv = [
        "train",
        "--config",
        str(recipe),
        "data.objective=span_corruption",
        "data.options={noise_density: 2}",
    ]
    assert main(argv) == 2
    assert "noise_density=2 is out of range" in _one_error_line(capsys)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------ text-only records
class CharTokenizer:
    """Enough of a tokenizer for text2text batches: one id a character, EOS appended."""

    eos_id, pad_id, vocab_size, model_vocab_size = 1, 0, 300, 384

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [min(ord(c), 299) for c in text]
        return [*ids, self.eos_id] if add_special_tokens else ids


@pytest.fixture
def labelled_folder(tmp_path) -> Path:
    folder = tmp_path / "sentiment"
    folder.mkdir()
    rows = [{"text": "good film", "label": "positive"}, {"text": "dull film", "label": "negative"}]
    for split in ("train", "validation"):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_text_and_label_records_are_refused_for_text2text(labelled_folder):
    stream = make_stream(str(labelled_folder), CharTokenizer(), objective="text2text", batch_size=2)
    with pytest.raises(DataError) as err:
        next(stream)
    message = str(err.value)
    assert f"{labelled_folder / 'train.jsonl'}:1" in message
    assert "'text', 'label'" in message and "targets" in message and "text2text" in message
    assert len(message.splitlines()) == 1


def test_scoring_a_text_only_record_is_refused(labelled_folder):
    task = Task("sentiment_eval", labelled_folder)
    example = next(task.examples("validation"))
    assert example["targets"] == "" and isinstance(example["targets"], NoTargets)
    with pytest.raises(DataError, match=r"validation.jsonl:1: .*scoring task 'sentiment_eval'"):
        task.postprocess(example["targets"])
    assert task.postprocess(" a prediction ") == "a prediction"


def test_pretraining_objectives_still_take_text_only_records(labelled_folder):
    stream = make_stream(
        str(labelled_folder), CharTokenizer(), objective="causal_lm", arch="decoder", batch_size=2
    )
    batch = next(stream)
    assert batch["input_ids"].shape[0] == 2


def test_records_with_real_targets_are_untouched(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"inputs": "a", "targets": "b"}\n{"text": "c", "targets": "d"}\n')
    task = register_task(Task("robust_real", tmp_path / "t.jsonl"), overwrite=True)
    examples = list(task.examples())
    assert [e["targets"] for e in examples] == ["b", "d"]
    assert not any(isinstance(e["targets"], NoTargets) for e in examples)
    batch = next(make_stream(task, CharTokenizer(), objective="text2text", batch_size=2))
    assert batch["labels"].shape[0] == 2


# ------------------------------------------------------------------------------------ tokenizer sizes
@pytest.mark.parametrize("size", [MAX_VOCAB_SIZE + 1, 99_999_999, 2**31, 2**63])
def test_absurd_vocab_sizes_are_refused_up_front(size):
    with pytest.raises(ConfigError, match=f"vocab_size={size} is more than t2t trains"):
        TokenizerConfig(vocab_size=size)


def _small_corpus(path: Path) -> Path:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    path.write_text(
        "\n".join(" ".join(words[(i + j) % len(words)] for j in range(6)) for i in range(200)) + "\n"
    )
    return path


@pytest.mark.parametrize("kind", ["sentencepiece", "wordpiece", "bpe"])
def test_a_vocabulary_smaller_than_asked_is_reported(tmp_path, caplog, kind):
    corpus = _small_corpus(tmp_path / "c.txt")
    with caplog.at_level(logging.WARNING, logger="t2t.tokenizer"):
        tok = train_tokenizer([corpus], TokenizerConfig(kind=kind, vocab_size=5000))
    assert tok.vocab_size < 5000
    lines = [r.getMessage() for r in caplog.records if r.name == "t2t.tokenizer"]
    assert len(lines) == 1
    assert f"vocab_size=5000 was asked but {corpus} gave only {tok.vocab_size} tokens" in lines[0]
    assert "larger corpus" in lines[0]


def test_no_report_when_the_vocabulary_has_the_size_asked(tmp_path, caplog):
    corpus = _small_corpus(tmp_path / "c.txt")
    with caplog.at_level(logging.WARNING, logger="t2t.tokenizer"):
        tok = train_tokenizer([corpus], TokenizerConfig(kind="bpe", vocab_size=260))
    assert tok.vocab_size == 260
    assert not [r for r in caplog.records if r.name == "t2t.tokenizer"]


# -------------------------------------------------------------------------------------- empty configs
@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_config_file_is_an_error(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    for cls in (ModelConfig, TrainConfig):
        with pytest.raises(ConfigError, match=f"{path}: the file is empty"):
            cls.load(path)


def test_an_explicit_empty_mapping_still_means_the_defaults(tmp_path):
    path = tmp_path / "defaults.yaml"
    path.write_text("{}\n")
    assert ModelConfig.load(path) == ModelConfig()


def test_inspect_of_an_empty_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert main(["inspect", str(path)]) == 2
    line = _one_error_line(capsys)
    assert "empty.yaml: the file is empty" in line
    assert capsys.readouterr().out == ""
