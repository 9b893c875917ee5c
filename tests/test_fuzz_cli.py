"""Property-based fuzzing of the `t2t` command line (Hypothesis): bad input never becomes a traceback.

The promise (docs/cli.md, docs/architecture.md): whatever the user gives, `t2t` exits 0, or prints one line
`t2t CMD: error: ...` on stderr and exits 2; it never hangs; an exit 0 never leaves a half-written file.
Each test fuzzes one surface, from what the code declares so that new fields and options are fuzzed
without editing this file:

- config fields: every field of TrainConfig (sections, objective options and ModelConfig overrides
  included) as `key=value` overrides and as recipe YAML; ModelConfig files (and Hugging Face config.json)
  for `t2t inspect`; the fine-tuning recipe; GenerationConfig and TokenizerConfig through the flags
  that set them;
- command-line arguments of every subcommand found in `build_parser()`;
- malformed data files for every command that reads data;
- a sweep (not random): every numeric field of those configs at 10**20, -10**20, 1e308, NaN, inf, 0, -1.

Every case runs in-process (fuzz_helpers.run_cli) in a fresh copy of a tiny workspace, with a time limit.
A test runs all its examples and then fails with the list of distinct failures (kind, source location,
count, smallest case); T2T_FUZZ_FAILFAST=1 raises at the first one instead (Hypothesis then shrinks it).
Longer runs: T2T_FUZZ_EXAMPLES=2000 (examples per test), T2T_FUZZ_TIMEOUT (seconds per case, 8),
T2T_FUZZ_LOG=fuzz.jsonl (every failing case as a JSON line).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

import fuzz_helpers as fz
import t2t
import t2t.train.config as train_config
from t2t.cli.main import build_parser
from t2t.config import ModelConfig
from t2t.generation.config import GenerationConfig
from t2t.tokenizer import TokenizerConfig
from t2t.train.config import TrainConfig

pytestmark = pytest.mark.filterwarnings("ignore")


def fuzz_settings(default_examples: int) -> settings:
    """Derandomized (the same cases on every run), no deadline, no example database; shrinking only in
    fail-fast mode (the collecting mode reports the smallest case of each failure group itself)."""
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if fz.FAILFAST else [])
    return settings(
        max_examples=fz.examples(default_examples),
        derandomize=True,
        deadline=None,
        database=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


SESSIONS: list[fz.Session] = []


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    seed = fz.build_workspace(tmp_path_factory.mktemp("fuzz"))
    yield seed
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or not SESSIONS:
        return
    cases, seconds = sum(s.cases for s in SESSIONS), sum(s.seconds for s in SESSIONS)
    lines = [f"t2t fuzz: {cases} cases, {seconds:.0f} s in t2t"]
    for s in SESSIONS:
        lines.append(f"  {s.summary()}")
        lines += [f"    note x{count}: {note}" for note, count in s.notes.items()]
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(fz.printable(line))


@pytest.fixture
def session(request: pytest.FixtureRequest, workspace: Path, tmp_path_factory) -> fz.Session:
    name = request.node.name.removeprefix("test_")
    s = fz.Session(name, workspace, tmp_path_factory.mktemp("cases"))
    yield s
    SESSIONS.append(s)


def yaml_value(text: str) -> Any:
    """The value an override's text stands for (as the CLI reads it), or the text when it does not parse."""
    from t2t.configbase import parse_override_value
    from t2t.errors import T2TError

    try:
        return parse_override_value(text)
    except (T2TError, ValueError):
        return text


def as_number(value: Any) -> float | None:
    """The number a value stands for (a config may take 3e3 or "1_000" for an integer), else None."""
    if isinstance(value, str):
        try:
            value = float(value.replace("_", ""))
        except ValueError:
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


def too_long(path: str, value: Any, limits: dict[str, int]) -> bool:
    """A valid value that asks for legitimately long work (a thousand steps): not a bad input. For
    max_steps, None too: a run of the default length (1000 steps, or 3 epochs of a recipe)."""
    if path not in limits:
        return False
    if value is None:
        return path == "max_steps"
    number = as_number(value)
    return number is not None and number > limits[path]


# An integer field between these is a size a user may mean (a model of 10,000 layers, a batch of 65,536
# rows): legitimately slow, not a bad input. Below is quick; from 10**9 on the value is absurd and must be
# refused (models and generation lengths are checked against the memory they would need).
QUICK, ABSURD = 64, 10**9


def plausible_but_slow(annotation: Any, value: Any) -> bool:
    number = as_number(value)
    return int in fz.base_types(annotation) and number is not None and QUICK < abs(number) < ABSURD


# ==========================================================================================================
# 1. Config fields as overrides and recipe files: t2t train
# ==========================================================================================================
TRAIN_FIELDS = fz.config_fields(TrainConfig)
MODEL_FIELDS = fz.config_fields(ModelConfig)
# Steps are what a run is asked to do: max_steps=10**9 is a long run, not a bad input.
TRAIN_LONG = {"max_steps": 4, "grad_accum_steps": 4}
TRAIN = ["train", "--config", "recipe.yaml"]
SENTIMENT = ["data.train=data/sentiment/train.tsv", "data.test=data/sentiment/test.tsv"]
# The same tiny run with each objective the config offers (the fuzzed override comes after, so it wins).
PROFILES: dict[str, list[str]] = {
    "text2text": [],
    "span_corruption": ["data.objective=span_corruption"],
    "prefix_lm": ["data.objective=prefix_lm"],
    "causal_lm": ["model.preset=gpt2-tiny", "data.objective=causal_lm", "eval.tasks=[]"],
    "mlm_nsp": ["model.preset=bert-tiny", "model.tokenizer=wp", "data.objective=mlm_nsp", "eval.tasks=[]"],
    "classification": [
        "model.preset=bert-tiny", "model.tokenizer=wp", "data.objective=classification", "data.task=null",
        "data.tasks_yaml=[]", "eval.tasks=[]", "eval.split=test", *SENTIMENT,
    ],
}  # fmt: skip
PROFILES = {k: v for k, v in PROFILES.items() if k in getattr(train_config, "OBJECTIVES", ())}
# Valid settings of the choice fields, one or two drawn per case, so that a bad value meets each optimizer,
# schedule and scheduled-sampling form (from the config module's lists: new choices are used at once).
CONTEXTS: list[list[str]] = [
    *([f"optim.name={n}"] for n in getattr(train_config, "OPTIMIZERS", ())),
    *([f"schedule.name={n}", "schedule.warmup_steps=1"] for n in getattr(train_config, "SCHEDULES", ())),
    *(
        [f"scheduled_sampling.schedule={n}", f"scheduled_sampling.k={2 if n == 'inverse_sigmoid' else 0.5}"]
        for n in getattr(train_config, "SS_SCHEDULES", ())
    ),
    ["data.pack=true"], ["data.shuffle=true"], ["eval.loss=true"], ["eval.every=1"], ["checkpoint.every=1"],
    ["optim.beta1=0.9"], ["data.replay.tasks=[numbers]", "data.replay.share=0.5"], ["bf16=true"],
    # and every choice of every Literal field (peft.method=lora, ...)
    *(
        [f"{f.path}={choice}"]
        for f in TRAIN_FIELDS
        if typing.get_origin(f.annotation) is typing.Literal
        for choice in typing.get_args(f.annotation)
    ),
]  # fmt: skip


def objective_options() -> dict[str, dict[str, Any]]:
    """The options of each objective (data.options), from the modules that declare them."""
    import importlib

    out: dict[str, dict[str, Any]] = {}
    for module, name in (("t2t.data.features", "OPTIONS"), ("t2t.finetune.objectives", "HEAD_OPTIONS")):
        try:
            out.update(getattr(importlib.import_module(module), name, {}))
        except ImportError:
            continue
    return {k: v for k, v in out.items() if k in PROFILES} or {"span_corruption": {"noise_density": 0.15}}


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of a nested dict with `a.b.c` set."""
    data = json.loads(json.dumps(data))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
    node[last] = value
    return data


@st.composite
def train_config_case(draw: st.DrawFn) -> fz.Case:
    profile = draw(st.sampled_from(sorted(PROFILES)))
    contexts = draw(st.lists(st.sampled_from(CONTEXTS), max_size=2))
    before = [*PROFILES[profile], *(o for c in contexts for o in c)]
    how = draw(st.sampled_from(["override", "override", "yaml", "mapping", "typo", "malformed"]))
    if how == "override":
        field = draw(st.sampled_from(TRAIN_FIELDS))
        text = draw(fz.bad_override_text(field.annotation))
        assume(not too_long(field.path, yaml_value(text), TRAIN_LONG))
        assume(not plausible_but_slow(field.annotation, yaml_value(text)))
        return fz.Case([*TRAIN, *before, f"{field.path}={text}"], target=field.path)
    if how == "yaml":
        field = draw(st.sampled_from(TRAIN_FIELDS))
        value = draw(fz.field_value(field.annotation))
        assume(not too_long(field.path, value, TRAIN_LONG))
        assume(not plausible_but_slow(field.annotation, value))
        recipe = yaml.safe_dump(set_path(fz.TRAIN_RECIPE, field.path, value), allow_unicode=True)
        what = f"recipe.yaml: {field.path}: {value!r}"
        return fz.Case([*TRAIN, *before], files={"recipe.yaml": recipe}, target=field.path, what=what)
    if how == "mapping":  # Any-typed mappings: the model's fields and the objective's options
        if draw(st.booleans()):
            types = {f.path: f.annotation for f in MODEL_FIELDS} | {"nosuch": Any, "d_modle": int}
            key = draw(st.sampled_from(sorted(types)))
            value = draw(fz.field_value(types[key]))
            assume(not plausible_but_slow(types[key], value))
            path = "model.overrides"
        else:
            options = objective_options()
            objective = draw(st.sampled_from(sorted(options)))
            before = PROFILES[objective]
            key = draw(st.sampled_from([*options[objective], "decoder_start_id", "nosuch"]))
            default = options[objective].get(key)
            annotation = type(default) if default is not None else Any
            value = draw(fz.field_value(annotation))
            assume(not plausible_but_slow(annotation, value))
            path = "data.options"
        text = fz._printable_yaml({key: value})
        return fz.Case([*TRAIN, *before, f"{path}={text}"], target=f"{path}.{key}")
    if how == "typo":
        field = draw(st.sampled_from(TRAIN_FIELDS))
        key = draw(st.sampled_from(fz.typos(field.path)))
        return fz.Case([*TRAIN, *before, f"{key}=1"], target="typo")
    item = draw(fz.malformed_keys()).replace("\x00", "")
    return fz.Case([*TRAIN, *before, item], target="malformed")


@given(case=train_config_case())
@fuzz_settings(100)
def _fuzz_train_config(session: fz.Session, case: fz.Case) -> None:
    session.run(case)


@pytest.mark.slow
def test_train_config_fields(session):
    """Every TrainConfig field (and model override, objective option) given a bad value, a typo'd key or
    a malformed override, on the command line or in the recipe: a clean error or a complete run."""
    _fuzz_train_config(session)
    session.assert_no_failures()


# ==========================================================================================================
# 2. ModelConfig files: t2t inspect (t2t YAML/JSON and Hugging Face config.json)
# ==========================================================================================================
TINY_PRESETS = [name for name in t2t.presets.preset_names() if name.endswith("-tiny")]


@st.composite
def model_config_case(draw: st.DrawFn) -> fz.Case:
    flags = draw(st.sampled_from([[], ["--json"], ["--context", "16"], ["--json", "--context", "1"]]))
    how = draw(st.sampled_from(["field", "field", "typo", "hf"]))
    if how == "hf":  # the checkpoint's Hugging Face config.json with one key changed or removed
        key = draw(st.sampled_from([*HF_KEYS, "nosuch"]))
        annotation = type(HF_CONFIG[key]) if HF_CONFIG.get(key) is not None else Any
        value = draw(fz.field_value(annotation))
        assume(not plausible_but_slow(annotation, value))
        files = {"ckpt/config.json": hf_config_with(key, value)}
        what = f"ckpt/config.json: {key}: {'(removed)' if value is None else repr(value)}"
        return fz.Case(["inspect", "ckpt", *flags], files=files, target=key, what=what)
    suffix = draw(st.sampled_from([".yaml", ".json"]))
    field = draw(st.sampled_from(MODEL_FIELDS))
    name = draw(st.sampled_from(TINY_PRESETS))
    base = t2t.preset(name).to_dict()
    if how == "typo":
        key = draw(st.sampled_from(fz.typos(field.path)))
        base[key] = base[field.path]
        what = f"{name} with {key}: {base[key]!r}"
    else:
        base[field.path] = draw(fz.field_value(field.annotation))
        assume(not plausible_but_slow(field.annotation, base[field.path]))
        what = f"{name} with {field.path}: {base[field.path]!r}"
    if suffix == ".json":
        text = json.dumps(base, allow_nan=True)
    else:
        text = yaml.safe_dump(base, allow_unicode=True)
    files = {f"model{suffix}": text}
    return fz.Case(["inspect", f"model{suffix}", *flags], files=files, target=field.path, what=what)


HF_KEYS: list[str] = []
HF_CONFIG: dict[str, Any] = {}


def hf_config_with(key: str, value: Any) -> str:
    config = dict(HF_CONFIG)
    if value is None and key in config:
        del config[key]
    else:
        config[key] = value
    return json.dumps(config, allow_nan=True)


def inspect_output_ok(directory: Path, outcome: fz.Outcome) -> str | None:
    if "--json" in outcome.argv:
        try:
            json.loads(outcome.stdout)
        except ValueError as err:
            return f"inspect --json printed something that is not JSON ({err})"
    return None


@given(case=model_config_case())
@fuzz_settings(80)
def _fuzz_model_config(session: fz.Session, case: fz.Case) -> None:
    session.run(case, inspect_output_ok)


def test_model_config_files(session, workspace):
    """Every ModelConfig field of each tiny preset set to a bad value (or its key misspelt) in a YAML or
    JSON file, and every key of a Hugging Face config.json: `t2t inspect` errors cleanly or prints."""
    HF_CONFIG.clear()
    HF_CONFIG.update(json.loads((workspace / "ckpt" / "config.json").read_text()))
    HF_KEYS[:] = sorted(HF_CONFIG)
    _fuzz_model_config(session)
    session.assert_no_failures()


# ==========================================================================================================
# 3. The fine-tuning recipe: t2t finetune
# ==========================================================================================================
FINETUNE = ["finetune", "--recipe", "ft.yaml", "--quiet"]
RECIPE_LONG = {"max_steps": 4}


def recipe_surface() -> tuple[list[fz.ConfigField], dict[str, Any]]:
    """The keys `t2t finetune --recipe` reads and the recipe mapping they apply to. With a RecipeConfig
    (t2t 0.1) its fields and the recipe as written; once recipes are training configs, TrainConfig's fields
    plus the 0.1 names still read as aliases, and the recipe as the training config it stands for."""
    import importlib

    recipe = importlib.import_module("t2t.finetune.recipe")
    cls = getattr(recipe, "RecipeConfig", None)
    if cls is not None:
        return fz.config_fields(cls), fz.FINETUNE_RECIPE
    aliases = [fz.ConfigField(k, Any, object) for k in getattr(recipe, "_RENAMES", {})]
    convert = getattr(recipe, "legacy_recipe", None)
    base = convert(fz.FINETUNE_RECIPE, "ft.yaml") if convert else fz.FINETUNE_RECIPE
    return fz.config_fields(TrainConfig) + aliases, base


@st.composite
def recipe_case(draw: st.DrawFn) -> fz.Case:
    fields, base = recipe_surface()
    field = draw(st.sampled_from(fields))
    how = draw(st.sampled_from(["override", "override", "yaml", "typo"]))
    if how == "override":
        text = draw(fz.bad_override_text(field.annotation))
        assume(not too_long(field.path, yaml_value(text), RECIPE_LONG))
        assume(not plausible_but_slow(field.annotation, yaml_value(text)))
        return fz.Case([*FINETUNE, f"{field.path}={text}"], target=field.path)
    if how == "yaml":
        value = draw(fz.field_value(field.annotation))
        assume(not too_long(field.path, value, RECIPE_LONG))
        assume(not plausible_but_slow(field.annotation, value))
        recipe = yaml.safe_dump(set_path(base, field.path, value), allow_unicode=True)
        what = f"ft.yaml: {field.path}: {value!r}"
        return fz.Case(FINETUNE, files={"ft.yaml": recipe}, target=field.path, what=what)
    key = draw(st.sampled_from(fz.typos(field.path)))
    return fz.Case([*FINETUNE, f"{key}=1"], target="typo")


@given(case=recipe_case())
@fuzz_settings(50)
def _fuzz_recipe(session: fz.Session, case: fz.Case) -> None:
    session.run(case)


@pytest.mark.slow
def test_finetune_recipe_fields(session):
    """Every RecipeConfig field (and its data section) with a bad value, as an override or in the file."""
    _fuzz_recipe(session)
    session.assert_no_failures()


# ==========================================================================================================
# 4. The command templates; configs set through flags: GenerationConfig (generate), TokenizerConfig (tokenizer)
# ==========================================================================================================
LEAVES = fz.leaf_parsers(build_parser())
EVAL_LIMITS = ["--limit", "2", "--max-new-tokens", "2", "--device", "cpu"]
# The runnable form of each command (options, then positionals by dest); a fuzzed option is added after
# the options (argparse keeps the last), a fuzzed positional replaces the template's.
TEMPLATES: dict[tuple[str, ...], tuple[list[str], dict[str, list[str]]]] = {
    ("quickstart",): (["--fast", "--out", "qs", "--no-progress", "--device", "meta"], {}),
    ("tokenizer", "train"): (["--input", "corpus.txt", "--vocab-size", "200", "--out", "newtok"], {}),
    ("tokenizer", "encode"): (["--tokenizer", "tok", "--tokens"], {"texts": ["one two <extra_id_0>"]}),
    ("tokenizer", "decode"): (["--tokenizer", "tok"], {"ids": ["5", "6", "1"]}),
    ("tokenizer", "info"): (["--tokenizer", "tok"], {}),
    ("train",): (["--config", "recipe.yaml"], {"overrides": []}),
    ("generate",): (["--model", "ckpt", "--max-new-tokens", "3", "--device", "cpu"], {"prompt": ["one two"]}),
    ("eval",): (["--model", "ckpt", "--tasks", "tasks.yaml", *EVAL_LIMITS, "--out", "ev", "--quiet"], {}),
    ("convert",): (["--from", "ckpt", "--to", "converted"], {}),
    ("peft", "merge"): (["--model", "ckpt", "--adapter", "adapter", "--out", "merged"], {}),
    ("inspect",): ([], {"model": ["t5-tiny"]}),
    ("plot",): (["--out", "curves.png"], {"run_dir": ["run"]}),
    ("finetune",): (["--recipe", "ft.yaml", "--quiet"], {"overrides": []}),
    ("demo",): (["--new-tokens", "2"], {}),
    ("serve",): (["--model", "ckpt", "--port", "0", "--device", "meta"], {}),
    ("experiment",): (["--dry-run", "--quick", "--out", "exp"], {"name": ["norms"]}),
}
# Commands that do minutes of legitimate work (or serve until stopped) when their arguments are valid:
# only cases that the parser or the device check refuse are run. So is a command with no template yet.
LONG_RUNNING = {("quickstart",), ("serve",)}


def flag_of(parser, name: str):  # type: ignore[no-untyped-def]
    flag = "--" + name.replace("_", "-")
    return next((a for a in parser._actions if flag in a.option_strings), None)


def flag_fields(config: type, command: tuple[str, ...]) -> list[tuple[str, Any]]:
    return [(f.path, flag_of(LEAVES[command], f.path)) for f in fz.config_fields(config)]


FLAG_CONFIGS = {
    "generation": (GenerationConfig, ("generate",)),
    "tokenizer": (TokenizerConfig, ("tokenizer", "train")),
}


@st.composite
def flag_case(draw: st.DrawFn, config: str) -> fz.Case:
    cls, command = FLAG_CONFIGS[config]
    name, action = draw(st.sampled_from([(n, a) for n, a in flag_fields(cls, command) if a is not None]))
    kind = fz.action_kind(action)
    opts, positionals = TEMPLATES[command]
    extra = (
        [action.option_strings[0]]
        if kind == "flag"
        else [f"{action.option_strings[0]}={draw(fz.option_value(kind, action))}"]
    )
    if config == "tokenizer":
        extra += ["--kind", draw(st.sampled_from(action_choices(LEAVES[command], "--kind")))]
    if config == "generation" and draw(st.booleans()):
        extra += ["--input", "prompts.jsonl", "--output", "answers.jsonl"]
        positionals = {}
    return fz.Case(build_argv(command, opts + extra, positionals), target=name)


def action_choices(parser, flag: str) -> list[str]:  # type: ignore[no-untyped-def]
    return list(next(a for a in parser._actions if flag in a.option_strings).choices)


def build_argv(command: tuple[str, ...], options: list[str], positionals: dict[str, list[str]]) -> list[str]:
    parser = LEAVES[command]
    ordered = [a.dest for a in parser._actions if not a.option_strings]
    tail = [v for dest in ordered for v in positionals.get(dest, [])]
    return [*command, *options, *tail]


@given(data=st.data())
@fuzz_settings(40)
def _fuzz_flags(session: fz.Session, config: str, data: st.DataObject) -> None:
    session.run(data.draw(flag_case(config)))


@pytest.mark.parametrize("config", sorted(FLAG_CONFIGS))
def test_config_fields_behind_flags(session, config):
    """GenerationConfig / TokenizerConfig fields that have a flag, each given bad values."""
    cls, command = FLAG_CONFIGS[config]
    fields = flag_fields(cls, command)
    unreachable = [name for name, action in fields if action is None]
    if unreachable:
        session.notes[f"{config} fields without a --flag (not fuzzed here): {', '.join(unreachable)}"] += 1
    _fuzz_flags(session, config)
    session.assert_no_failures()


# ==========================================================================================================
# 5. Command-line arguments of every subcommand
# ==========================================================================================================
@st.composite
def cli_case(draw: st.DrawFn, command: tuple[str, ...]) -> fz.Case:
    parser = LEAVES[command]
    actions = fz.fuzzable_actions(parser)
    opts, positionals = TEMPLATES.get(command, ([], {}))
    opts, positionals = list(opts), {k: list(v) for k, v in positionals.items()}
    how = draw(st.sampled_from(["option", "option", "option", "positional", "drop", "unknown", "dangling"]))
    optional = [a for a in actions if a.option_strings]
    positional = [a for a in actions if not a.option_strings]
    target = how
    if how == "option" and optional:
        action = draw(st.sampled_from(optional))
        target = action.dest
        flag = draw(st.sampled_from(action.option_strings))
        kind = fz.action_kind(action)
        if kind == "flag":
            opts += draw(st.sampled_from([[flag], [flag, flag], [f"{flag}=1"]]))
        elif action.nargs in ("+", "*") or isinstance(action.nargs, int):
            values = draw(st.lists(fz.option_value(kind, action), min_size=1, max_size=3))
            opts += [flag, *values]
        else:
            value = draw(fz.option_value(kind, action))
            opts += [f"{flag}={value}"] if draw(st.booleans()) or value.startswith("-") else [flag, value]
    elif how == "positional" and positional:
        action = draw(st.sampled_from(positional))
        target = action.dest
        kind = fz.action_kind(action)
        low = 0 if action.nargs in ("*", "?") else 1
        positionals[action.dest] = draw(st.lists(fz.option_value(kind, action), min_size=low, max_size=3))
    elif how == "drop":
        required = [a for a in optional if a.required] + positional
        if required:
            action = draw(st.sampled_from(required))
            target = f"drop {action.dest}"
            opts = drop_option(opts, action.option_strings) if action.option_strings else opts
            positionals.pop(action.dest, None)
    elif how == "unknown":
        opts += draw(st.sampled_from([["--nope"], ["--nope=1"], ["-z"], ["--"], ["---"], ["-"]]))
    dangling: list[str] = []
    if how == "dangling":  # an option without its value, last on the line
        valued = [a for a in optional if a.nargs != 0]
        if valued:
            action = draw(st.sampled_from(valued))
            target = f"dangling {action.dest}"
            dangling = [action.option_strings[-1]]
    argv = [a.replace("\x00", "") for a in [*build_argv(command, opts, positionals), *dangling]]
    if command in LONG_RUNNING or command not in TEMPLATES:
        assume(not runs_for_minutes(argv))
    stdin = draw(fz.malformed_text()) if command[:1] == ("tokenizer",) else b""
    return fz.Case(argv, stdin=stdin, target=target)


def drop_option(opts: list[str], flags: list[str]) -> list[str]:
    out, skip = [], False
    for arg in opts:
        if skip:
            skip = False
            continue
        if arg in flags:
            skip = True
            continue
        if any(arg.startswith(f + "=") for f in flags):
            continue
        out.append(arg)
    return out


def runs_for_minutes(argv: list[str]) -> bool:
    """True when the arguments parse and the device resolves: the command would really run."""
    from t2t.errors import T2TError
    from t2t.utils.devices import resolve_device

    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            args = build_parser().parse_args(argv)
    except SystemExit:
        return False
    try:
        resolve_device(getattr(args, "device", "cpu"))
    except (T2TError, ValueError, RuntimeError):
        return False
    return True


COMMANDS = sorted(LEAVES)


@given(data=st.data())
@fuzz_settings(25)
def _fuzz_cli(session: fz.Session, command: tuple[str, ...], data: st.DataObject) -> None:
    session.run(data.draw(cli_case(command)))


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_cli_arguments(session, command):
    """Each subcommand's options and positionals given wrong kinds of values, huge, negative and NaN
    numbers, missing files, directories for files and files for directories; required ones dropped,
    unknown ones added, a value missing."""
    _fuzz_cli(session, command)
    session.assert_no_failures()


# ==========================================================================================================
# 6. Malformed data files, fed to every command that reads data
# ==========================================================================================================
EVAL = ["eval", "--model", "ckpt", "--tasks", "tasks.yaml", "--limit", "2", "--max-new-tokens", "2"]
EVAL += ["--out", "ev", "--quiet", "--device", "cpu"]
GENERATE = ["generate", "--model", "ckpt", "--input", "prompts.jsonl", "--output", "answers.jsonl"]
GENERATE += ["--max-new-tokens", "2", "--device", "cpu"]
TABLE_TASKS = {
    "tasks": [
        {
            "name": "numbers",
            "source": {"train": "data/t/train.SUFFIX", "validation": "data/t/validation.SUFFIX"},
            "fields": {"inputs": "inputs", "targets": "targets"},
        }
    ]
}
CKPT_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "spiece.model"]
CKPT_FILES += ["special_tokens_map.json"]


def corrupt_file(data: bytes) -> st.SearchStrategy[bytes | None]:
    """A checkpoint file cut short, emptied, replaced by garbage or by JSON of the wrong shape, or gone."""
    return st.one_of(
        st.none(),
        st.just(b""),
        st.integers(1, max(1, len(data) - 1)).map(lambda n: data[:n]),
        st.binary(min_size=1, max_size=64),
        st.sampled_from([b"{}", b"[]", b"null", b'{"model_type": "bart"}', b'{"vocab_size": -1}', b"\xff"]),
    )


@st.composite
def data_case(draw: st.DrawFn, consumer: str, workspace: Path) -> fz.Case:
    if consumer == "train":
        split = draw(st.sampled_from(["train", "validation"]))
        content = draw(fz.malformed_jsonl())
        extra = draw(st.sampled_from([[], ["data.shuffle=true"], ["data.pack=true"], ["eval.loss=true"]]))
        profile = PROFILES[draw(st.sampled_from(sorted(PROFILES)))]
        return fz.Case(
            [*TRAIN, *profile, *extra], files={f"data/numbers/{split}.jsonl": content}, target=split
        )
    if consumer == "train-table":
        suffix, delimiter = draw(st.sampled_from([("tsv", "\t"), ("csv", ",")]))
        split = draw(st.sampled_from(["train", "validation"]))
        good = "inputs\ttargets\none two\teins zwei\n".replace("\t", delimiter)
        tasks = yaml.safe_dump(TABLE_TASKS).replace("SUFFIX", suffix)
        bad = draw(fz.malformed_table(["inputs", "targets"], ["one two", "eins zwei"], delimiter))
        files = {"tasks.yaml": tasks, f"data/t/train.{suffix}": good, f"data/t/validation.{suffix}": good}
        files[f"data/t/{split}.{suffix}"] = bad
        return fz.Case(TRAIN, files=files, target=suffix)
    if consumer == "eval":
        return fz.Case(EVAL, files={"data/numbers/test.jsonl": draw(fz.malformed_jsonl())})
    if consumer == "tokenizer-train":
        kind = draw(st.sampled_from(action_choices(LEAVES[("tokenizer", "train")], "--kind")))
        argv = ["tokenizer", "train", "--input", "corpus.txt", "--vocab-size", "200", "--out", "newtok"]
        return fz.Case([*argv, "--kind", kind], files={"corpus.txt": draw(fz.malformed_text())}, target=kind)
    if consumer == "plot":
        return fz.Case(
            ["plot", "run", "--out", "curves.png"], files={"run/metrics.jsonl": draw(fz.metrics_records())}
        )
    if consumer == "generate":
        content = draw(fz.malformed_jsonl({"prompt": "one two"}))
        return fz.Case(GENERATE, files={"prompts.jsonl": content})
    if consumer == "finetune":
        which = draw(st.sampled_from(["train", "test"]))
        if draw(st.booleans()):
            content = draw(fz.malformed_table(["sentence", "label"], ["a good film", "1"], "\t"))
            return fz.Case(FINETUNE, files={f"data/sentiment/{which}.tsv": content}, target=which)
        content = draw(fz.malformed_jsonl({"sentence": "a good film", "label": 1}))
        path = f"data/sentiment/{which}.jsonl"
        return fz.Case([*FINETUNE, f"data.{which}={path}"], files={path: content}, target=which)
    if consumer == "stdin":
        if draw(st.booleans()):
            lines = st.lists(
                st.one_of(
                    st.integers(-(2**70), 2**70).map(str),
                    st.sampled_from(
                        ["-1", "-100", "nan", "1e3", "", "x", "5 6", "1.5", "99999999999999999999"]
                    ),
                ),
                max_size=4,
            ).map(lambda xs: (" ".join(xs) + "\n").encode())
            stdin = draw(st.one_of(lines, fz.malformed_text()))
            return fz.Case(["tokenizer", "decode", "--tokenizer", "tok"], stdin=stdin, target="decode")
        return fz.Case(
            ["tokenizer", "encode", "--tokenizer", "tok"], stdin=draw(fz.malformed_text()), target="encode"
        )
    if consumer == "config-file":
        which = draw(st.sampled_from(["recipe.yaml", "model.yaml", "ft.yaml", "tasks.yaml", "model.json"]))
        content = draw(fz.malformed_yaml())
        argv = {
            "recipe.yaml": TRAIN,
            "model.yaml": ["inspect", "model.yaml"],
            "model.json": ["inspect", "model.json"],
            "ft.yaml": FINETUNE,
            "tasks.yaml": draw(st.sampled_from([TRAIN, EVAL])),
        }[which]
        return fz.Case(argv, files={which: content}, target=which)
    if consumer == "checkpoint":
        name = draw(st.sampled_from(CKPT_FILES))
        content = draw(corrupt_file((workspace / "ckpt" / name).read_bytes()))
        argv = draw(
            st.sampled_from(
                [
                    ["generate", "--model", "ckpt", "one two", "--max-new-tokens", "2", "--device", "cpu"],
                    EVAL,
                    ["convert", "--from", "ckpt", "--to", "converted"],
                    ["inspect", "ckpt"],
                    ["tokenizer", "info", "--tokenizer", "ckpt"],
                    [*TRAIN, "model.preset=null", "model.checkpoint=ckpt", "model.tokenizer=null"],
                ]
            )
        )
        return fz.Case(argv, files={f"ckpt/{name}": content}, target=f"{argv[0]} {name}")
    raise AssertionError(consumer)


CONSUMERS = [
    "train", "train-table", "eval", "tokenizer-train", "plot", "generate", "finetune", "stdin",
    "config-file", "checkpoint",
]  # fmt: skip
SLOW_CONSUMERS = {"train", "train-table", "finetune", "eval"}


@given(data=st.data())
@fuzz_settings(30)
def _fuzz_data(session: fz.Session, consumer: str, data: st.DataObject) -> None:
    session.run(data.draw(data_case(consumer, session.seed)))


@pytest.mark.parametrize(
    "consumer", [pytest.param(c, marks=[pytest.mark.slow] if c in SLOW_CONSUMERS else []) for c in CONSUMERS]
)
def test_malformed_data_files(session, consumer):
    """Truncated JSONL, binary garbage, wrong or missing fields, wrong column counts, BOM, CRLF, NUL, huge
    lines, non-object lines, empty files, broken configs and checkpoints: clean errors or clean runs."""
    _fuzz_data(session, consumer)
    session.assert_no_failures()


# ==========================================================================================================
# 7. A sweep: every numeric field at each extreme, once (random draws reach a given field and value rarely)
# ==========================================================================================================
SWEEP_VALUES = (10**20, -(10**20), 1e308, float("nan"), float("inf"), 0, -1)
FULL_SWEEP = "T2T_FUZZ_EXAMPLES" in os.environ  # a long run: each value with every setting of its section


def numeric(fields: list[fz.ConfigField]) -> list[fz.ConfigField]:
    return [f for f in fields if fz.base_types(f.annotation) & {int, float}]


def sweep_contexts(path: str) -> list[list[str]]:
    """The valid settings a field's value meets in turn: those of its own section (each optimizer for an
    optim field, each objective for a data field), else none."""
    section = path.split(".")[0]
    own = [c for c in CONTEXTS if c[0].split(".")[0] == section]
    if section == "data":
        own += list(PROFILES.values())
    return own or [[]]


def sweep_cases(surface: str) -> list[fz.Case]:
    cases = []
    if surface == "train":
        for k, field in enumerate(numeric(TRAIN_FIELDS)):
            contexts = sweep_contexts(field.path)
            for i, value in enumerate(SWEEP_VALUES):
                if too_long(field.path, value, TRAIN_LONG):
                    continue
                text = fz._printable_yaml(value)
                # each value with one setting of the section in turn; in a long run, with every setting
                chosen = contexts if FULL_SWEEP else [contexts[(i + k) % len(contexts)]]
                for context in chosen:
                    argv = [*TRAIN, *context, f"{field.path}={text}"]
                    cases.append(fz.Case(argv, target=field.path))
    elif surface == "inspect":
        base = t2t.preset("t5-tiny").to_dict()
        for field in numeric(MODEL_FIELDS):
            for value in SWEEP_VALUES:
                text = yaml.safe_dump({**base, field.path: value})
                what = f"t5-tiny with {field.path}: {value!r}"
                files = {"model.yaml": text}
                cases.append(fz.Case(["inspect", "model.yaml"], files=files, target=field.path, what=what))
    else:
        cls, command = FLAG_CONFIGS[surface]
        opts, positionals = TEMPLATES[command]
        for name, action in flag_fields(cls, command):
            if action is None or fz.action_kind(action) not in ("int", "float"):
                continue
            for value in SWEEP_VALUES:
                flag = f"{action.option_strings[0]}={fz._printable_yaml(value).lstrip('.')}"
                cases.append(fz.Case(build_argv(command, [*opts, flag], positionals), target=name))
    return cases


@pytest.mark.slow
@pytest.mark.parametrize("surface", ["train", "inspect", *sorted(FLAG_CONFIGS)])
def test_numeric_fields_at_their_extremes(session, surface):
    """Each numeric field of TrainConfig, ModelConfig, GenerationConfig and TokenizerConfig set to each of
    SWEEP_VALUES, one case each (with the settings of its section in turn; all of them in a long run)."""
    for case in sweep_cases(surface):
        session.run(case)
    session.assert_no_failures()


# ==========================================================================================================
# The baselines: every template and training profile runs cleanly, so the fuzzing starts from valid input
# ==========================================================================================================
@pytest.mark.slow
def test_templates_run_cleanly(session):
    """Every command's template, training profile and context exits 0 with complete files."""
    assert set(TEMPLATES) >= set(COMMANDS), f"no template for {set(COMMANDS) - set(TEMPLATES)}"
    cases = [
        fz.Case(build_argv(command, *TEMPLATES[command]))
        for command in COMMANDS
        if command not in LONG_RUNNING
    ]
    cases += [fz.Case([*TRAIN, *profile]) for profile in PROFILES.values()]
    cases += [fz.Case([*TRAIN, *context]) for context in CONTEXTS]
    cases += [fz.Case(GENERATE), fz.Case(EVAL), fz.Case(["inspect", "model.yaml", "--json"])]
    problems = []
    for case in cases:
        outcome = session.run(case)
        if outcome is None or outcome.code != 0 or session.failures:
            problems.append(
                f"{case.describe()}\n  -> {outcome and outcome.code}: {outcome and outcome.stderr[-600:]}"
            )
            session.failures.clear()
    assert not problems, fz.printable("\n\n".join(problems))
