"""Machinery of the CLI fuzz tests (tests/test_fuzz_cli.py): a tiny workspace, an in-process runner with a
time limit, the checks every run must pass, the failure collector, and the Hypothesis strategies.

Every case runs `t2t.cli.main.main(argv)` in this process, in a fresh copy of the workspace (the current
directory while it runs), with stdin, stdout and stderr replaced by UTF-8 streams that behave like a
terminal's (stdout strict, stderr backslashreplace). A case passes when main() returns 0 or 2 (or
argparse exits with 0 or 2), nothing else escapes it, it finishes within the time limit, an error (2) is
one `t2t CMD: error: ...` line on stderr (the last line there), no traceback is printed, and every file
the run wrote or changed is complete and parses (JSON, JSONL, YAML, safetensors, PNG) with no temporary
file left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import faulthandler
import io
import json
import os
import re
import shutil
import signal
import struct
import sys
import time
import traceback
import types
import typing
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src" / "t2t")
EXIT_OK, EXIT_USAGE = 0, 2

# ---- settings from the environment ----------------------------------------------------------------------
# T2T_FUZZ_EXAMPLES=N  examples per test (each parametrized instance); the CI default is per test below.
# T2T_FUZZ_TIMEOUT=S   seconds a case may run (default 8); one that runs out runs again with 3x as long, and
#                      counts as a hang if it runs out again.
# T2T_FUZZ_FAILFAST=1  raise at the first failing case inside Hypothesis (which then shrinks it), instead of
#                      running every example and failing at the end with the list of distinct failures.
# T2T_FUZZ_LOG=FILE    append every failing case as one JSON line (for triage of long runs).
# T2T_FUZZ_BACKSTOP=F  where a case stuck in C code for 120 s past its limit is written, with every thread's
#                      stack, before the test process exits (default /tmp/t2t-fuzz-backstop-PID.txt).


def examples(default: int) -> int:
    return int(os.environ.get("T2T_FUZZ_EXAMPLES", default))


CASE_TIMEOUT = float(os.environ.get("T2T_FUZZ_TIMEOUT", "8"))
FAILFAST = os.environ.get("T2T_FUZZ_FAILFAST", "") not in ("", "0")
LOG_FILE = os.environ.get("T2T_FUZZ_LOG")
MEMORY_BUDGET = 3 * 2**30  # address space a case may add to what the process already maps (a run here
# peaks at 1.3 GB): an absurd size fails fast instead of pressing a shared machine into swapping
RETRY_FACTOR = 3  # a case that hits the time limit runs again with this many times the limit
HANGS_PER_TARGET = 1  # after this many hangs of one fuzzed field/option, its further cases are skipped


# ==========================================================================================================
# The workspace: every resource a template command needs, tiny, built once per module.
# ==========================================================================================================
WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
GERMAN = ["eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn"]


def numbers_jsonl(n: int) -> str:
    return "".join(
        json.dumps({"inputs": WORDS[i % 10], "targets": GERMAN[i % 10]}, ensure_ascii=False) + "\n"
        for i in range(n)
    )


TASKS_YAML = {
    "tasks": [
        {
            "name": "numbers",
            "template": "translation",
            "source": {
                "train": "data/numbers/train.jsonl",
                "validation": "data/numbers/validation.jsonl",
                "test": "data/numbers/test.jsonl",
            },
        }
    ]
}
# A TrainConfig that trains a t5-tiny for 2 steps on 12 examples and evaluates 2 of them: ~0.1 s.
TRAIN_RECIPE: dict[str, Any] = {
    "run_dir": "trainrun",
    "max_steps": 2,
    "progress": False,
    "tensorboard": False,
    "log_every": 1,
    "device": "cpu",
    "model": {"preset": "t5-tiny", "tokenizer": "tok", "overrides": {"dropout": 0.0}},
    "data": {
        "tasks_yaml": ["tasks.yaml"],
        "task": "numbers",
        "batch_size": 2,
        "max_input_length": 16,
        "max_target_length": 8,
    },
    "eval": {"tasks": ["numbers"], "limit": 2, "max_new_tokens": 2, "batch_size": 2},
    "checkpoint": {"keep_last": 1},
}
# A fine-tuning recipe: a 1-layer BERT of width 16, 2 steps on 16 sentences, scored on 8.
FINETUNE_RECIPE: dict[str, Any] = {
    "name": "fuzz",
    "task": "classification",
    "family": "bert",
    "model": "bert-tiny",
    "model_overrides": {"d_model": 16, "d_ff": 32, "n_heads": 2, "n_encoder_layers": 1},
    "tokenizer": "wp",
    "data": {
        "train": "data/sentiment/train.tsv",
        "test": "data/sentiment/test.tsv",
        "text_field": "sentence",
        "label_field": "label",
        "limit_train": 16,
        "limit_test": 8,
    },
    "max_length": 16,
    "max_steps": 2,
    "batch_size": 4,
    "eval_batch_size": 8,
    "device": "cpu",
}


def build_workspace(root: Path) -> Path:
    """The seed directory each case starts from (copied, so a case can overwrite or corrupt anything)."""
    import t2t
    from generation_helpers import tiny_model_for
    from t2t.tokenizer import Tokenizer
    from tokenizer_helpers import write_corpus

    seed = root / "seed"
    seed.mkdir()
    corpus = write_corpus(seed / "corpus.txt", lines=300)
    sp = Tokenizer.train([corpus], kind="sentencepiece", vocab_size=300)
    sp.save_pretrained(seed / "tok")
    wp = Tokenizer.train([corpus], kind="wordpiece", vocab_size=300)
    wp.save_pretrained(seed / "wp")
    model = tiny_model_for(sp, "encoder-decoder")
    model.save_pretrained(seed / "ckpt")
    sp.save_pretrained(seed / "ckpt")
    from t2t.peft import PeftConfig, apply_peft, save_adapter  # a LoRA adapter of ckpt (`t2t peft merge`)

    save_adapter(apply_peft(model, PeftConfig(method="lora", r=2)), seed / "adapter")
    for split, n in (("train", 12), ("validation", 4), ("test", 4)):
        write(seed / "data" / "numbers" / f"{split}.jsonl", numbers_jsonl(n))
    sentiment = ROOT / "data" / "builtin" / "finetune" / "sentiment"
    for split, n in (("train", 17), ("test", 9)):  # the header and n - 1 rows
        lines = (sentiment / f"{split}.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
        write(seed / "data" / "sentiment" / f"{split}.tsv", "".join(lines[:n]))
    write(seed / "tasks.yaml", yaml.safe_dump(TASKS_YAML, sort_keys=False))
    write(seed / "recipe.yaml", yaml.safe_dump(TRAIN_RECIPE, sort_keys=False))
    write(seed / "ft.yaml", yaml.safe_dump(FINETUNE_RECIPE, sort_keys=False))
    t2t.preset("t5-tiny").save(seed / "model.yaml")
    write(seed / "prompts.jsonl", '{"prompt": "one two"}\n{"inputs": "three"}\n')
    write(seed / "afile.txt", "just a text file\n")
    (seed / "bin.dat").write_bytes(bytes(range(256)) * 4)
    (seed / "emptydir").mkdir()
    # a finished run (for `t2t plot`): metrics.jsonl as t2t train writes it
    with chdir(seed):
        outcome = run_cli(["train", "--config", "recipe.yaml", "run_dir=run"], timeout=300)
    assert outcome.code == 0, outcome.stderr
    shutil.rmtree(seed / "run" / "checkpoints")
    return seed


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


# ==========================================================================================================
# Running one case
# ==========================================================================================================
class CaseTimeout(BaseException):
    """Raised in the main thread by SIGALRM when a case runs past its time limit (a BaseException, so that
    the code under test cannot swallow it with `except Exception`)."""


@dataclasses.dataclass
class Outcome:
    argv: list[str]
    code: Any = None  # main()'s return value or SystemExit's code
    stdout: str = ""
    stderr: str = ""
    error: BaseException | None = None  # what escaped main() (not SystemExit)
    hung: CaseTimeout | None = None
    seconds: float = 0.0


def _stream(data: bytes = b"", errors: str = "strict") -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors=errors, write_through=True)


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("utf-8", errors="backslashreplace")


def run_cli(argv: list[str], *, stdin: bytes = b"", timeout: float = CASE_TIMEOUT) -> Outcome:
    """main(argv) in this process with a time limit; stdin/stdout/stderr as a UTF-8 terminal has them."""
    from t2t.cli.main import main

    outcome = Outcome(list(argv))
    streams = (sys.stdin, sys.stdout, sys.stderr)
    sys.stdin, sys.stdout, sys.stderr = _stream(stdin), _stream(), _stream(errors="backslashreplace")
    out, err = sys.stdout, sys.stderr

    fired = []

    def alarm(signum: int, frame: types.FrameType | None) -> None:
        fired.append(time.perf_counter())
        # an earlier alarm was lost: raised where Python ignores exceptions (a __del__ run by the garbage
        # collector), or caught by the code
        late = f" (alarm {len(fired)}: the earlier ones were lost)" if len(fired) > 1 else ""
        raise CaseTimeout(f"still running after {timeout:g} s{late}")

    previous = signal.signal(signal.SIGALRM, alarm)
    # a backstop for a hang inside C code, where the Python-level alarm cannot interrupt: write the case
    # and every thread's stack to BACKSTOP_FILE and end the test process rather than hang CI
    backstop = _backstop(argv)
    faulthandler.dump_traceback_later(timeout + 120, exit=True, file=backstop)
    start = time.perf_counter()
    try:
        try:
            # then every 5 s: one alarm can be lost (see `alarm`), not all of them; the gap lets the code
            # unwind from the first (freeing a half-built model takes a while)
            signal.setitimer(signal.ITIMER_REAL, timeout, 5.0)
            outcome.code = main(list(argv))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except SystemExit as done:
        outcome.code = 0 if done.code is None else done.code
    except CaseTimeout as hung:
        outcome.hung = hung
        _reset_torch_modes()
    except BaseException as error:  # everything else escaped main(): a bug
        outcome.error = error
    finally:
        outcome.seconds = time.perf_counter() - start
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)
        sys.stdin, sys.stdout, sys.stderr = streams
    outcome.stdout, outcome.stderr = _text(out), _text(err)
    return outcome


def _reset_torch_modes() -> None:
    """Drop the torch function modes an interrupted `with torch.device("meta"):` may have left pushed, so
    that a hang does not change how the next cases run (outside a case there are none)."""
    import torch

    while torch._C._len_torch_function_stack():
        torch._C._pop_torch_function_stack()


BACKSTOP_FILE = Path(os.environ.get("T2T_FUZZ_BACKSTOP", f"/tmp/t2t-fuzz-backstop-{os.getpid()}.txt"))
_BACKSTOP: list[Any] = []


def _backstop(argv: list[str]) -> Any:
    """BACKSTOP_FILE, holding the case about to run (pytest captures stderr: a dump there would be lost)."""
    if not _BACKSTOP:
        _BACKSTOP.append(open(BACKSTOP_FILE, "w", encoding="utf-8"))  # noqa: SIM115 (held for the session)
    fh = _BACKSTOP[0]
    fh.seek(0)
    fh.truncate()
    fh.write(f"t2t fuzz: the case still running after its time limit and 120 s more: {argv!r}\n")
    fh.flush()
    return fh


@contextlib.contextmanager
def memory_limit(budget: int = MEMORY_BUDGET) -> Iterator[None]:
    """Cap the address space so an absurd allocation fails at once rather than swapping the machine.

    The cap is what the process maps now plus `budget`, not a fixed size: after hundreds of tests a
    pytest process maps gigabytes it never touches (thread stacks, malloc arenas, libraries), and a fixed
    cap then failed ordinary cases with MemoryError and overflowed the main thread's stack (SIGSEGV)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mapped_bytes() + budget
    new = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (new, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def mapped_bytes() -> int:
    """The address space this process maps now (VmSize), from /proc; 0 where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@contextlib.contextmanager
def fresh_registries() -> Iterator[None]:
    """Each case sees the task and mixture registries as a new process would (the built-in ones only)."""
    from t2t.data import registry

    tasks, mixtures = dict(registry._TASKS), dict(registry._MIXTURES)
    try:
        yield
    finally:
        registry._TASKS.clear()
        registry._TASKS.update(tasks)
        registry._MIXTURES.clear()
        registry._MIXTURES.update(mixtures)


# ==========================================================================================================
# What a run must do: the checks, and the failures they find
# ==========================================================================================================
ERROR_LINE = re.compile(r"^t2t( [a-z][\w-]*)*: error: .")
TRACEBACK = ("Traceback (most recent call last)", '  File "')


@dataclasses.dataclass
class Failure:
    kind: str  # exception | hang | exit status | error message | traceback printed | corrupt output
    where: str  # source location (file:line in src/t2t) or the file at fault
    detail: str  # exception type and message, status, the stderr or the problem with the file
    case: Case | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        head = self.detail.split(":", 1)[0] if self.kind in ("exception", "hang") else ""
        return (self.kind, self.where, head)


@dataclasses.dataclass
class Case:
    """One run: argv, files written into the workspace copy first (relative path -> content; None
    deletes), stdin, and what is being fuzzed (`target`, for grouping and for skipping repeated hangs)."""

    argv: list[str]
    files: dict[str, bytes | str | None] = dataclasses.field(default_factory=dict)
    stdin: bytes = b""
    target: str = ""
    what: str = ""  # the change from the valid template, in words (for a file: which field, which value)

    def describe(self, limit: int = 300) -> str:
        def short(value: Any) -> str:
            text = repr(value)
            return text if len(text) <= limit else text[:limit] + f"...({len(text)} chars)"

        lines = ["argv: " + " ".join(short(a) if _needs_quoting(a) else a for a in self.argv)]
        if self.what:
            lines.append(f"change: {short(self.what)}")
        for name, content in self.files.items():
            lines.append(f"file {name}: {'(deleted)' if content is None else short(content)}")
        if self.stdin:
            lines.append(f"stdin: {short(self.stdin)}")
        return "\n    ".join(lines)

    def inputs(self) -> list[str]:
        """What the user typed (to tell a newline of theirs from a second message line)."""
        values = [a.split("=", 1)[1] for a in self.argv if a.startswith("-") and "=" in a]  # --opt=VALUE
        return [*self.argv, *values, *self.stdin.decode("utf-8", "replace").splitlines()]


def _needs_quoting(arg: str) -> bool:
    return not arg or len(arg) > 80 or any(c.isspace() or not c.isprintable() for c in arg)


def source_location(error: BaseException) -> str:
    """The innermost frame in src/t2t of an exception (else its innermost frame), as path:line."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f.filename.startswith(SRC)]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    path = os.path.relpath(frame.filename, ROOT) if frame.filename.startswith(str(ROOT)) else frame.filename
    return f"{path}:{frame.lineno} ({frame.name})"


def check_outcome(outcome: Outcome, inputs: list[str] = ()) -> list[Failure]:  # type: ignore[assignment]
    """The promises of docs/cli.md about status and stderr (the files are checked by check_files).

    A clean error (status 2) is exactly one `t2t [CMD]: error: ...` line on stderr, the last one there:
    lines before it (warnings) are noted, not failed; the message may only span more than one line where
    a value the user gave holds a newline itself."""
    if outcome.hung is not None:
        return [Failure("hang", source_location(outcome.hung), f"CaseTimeout: {outcome.hung}")]
    if outcome.error is not None:
        err = outcome.error
        message = " ".join(str(err).split())[:300]
        module = type(err).__module__
        name = type(err).__qualname__ if module == "builtins" else f"{module}.{type(err).__qualname__}"
        return [Failure("exception", source_location(err), f"{name}: {message}")]
    failures = []
    if outcome.code not in (EXIT_OK, EXIT_USAGE):
        failures.append(Failure("exit status", "", f"exit status {outcome.code!r}: {outcome.stderr[-500:]}"))
    stderr = outcome.stderr
    for value in inputs:  # a value the user gave with a newline in it does not make a second line
        if "\n" in value:
            stderr = stderr.replace(value, value.replace("\n", " "))
    lines = stderr.rstrip("\n").split("\n") if stderr.strip() else []
    if any(marker in line for line in lines for marker in TRACEBACK):
        failures.append(Failure("traceback printed", "", outcome.stderr[-1500:]))
    if outcome.code == EXIT_USAGE and not _is_group_help(outcome):
        starts = [i for i, line in enumerate(lines) if ERROR_LINE.match(line)]
        if len(starts) != 1 or starts[0] != len(lines) - 1:
            failures.append(Failure("error message", "", f"stderr: {outcome.stderr[-1500:]!r}"))
    return failures


def _is_group_help(outcome: Outcome) -> bool:
    """`t2t` or `t2t tokenizer` with no command: help on stdout and status 2, by design."""
    return not outcome.stderr.strip() and outcome.stdout.lstrip().startswith("usage:")


def stderr_notes(outcome: Outcome) -> list[str]:
    """What is odd but not failed about a clean error: lines before the error line (warnings, logs),
    an error line that does not name the command (`t2t: error: unrecognized arguments`)."""
    if outcome.code != EXIT_USAGE or outcome.error is not None or outcome.hung is not None:
        return []
    lines = outcome.stderr.rstrip("\n").split("\n")
    starts = [i for i, line in enumerate(lines) if ERROR_LINE.match(line)]
    notes = []
    if starts and starts[0] > 0:
        notes.append("stderr line(s) before the error line: " + _shape(lines[0]))
    if starts and lines[starts[0]].startswith("t2t: error:"):
        notes.append("error line without the command name: " + _shape(lines[starts[0]]))
    return notes


def _shape(line: str) -> str:
    """A line without its particulars (values, numbers), so that notes of one kind add up."""
    return re.sub(r"(?<![a-z])\d+", "#", ":".join(line.split(":")[:3]))[:70]


# ---- files ------------------------------------------------------------------------------------------------
def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for path in directory.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file():
                stat = path.stat()
                out[str(path.relative_to(directory))] = (stat.st_size, stat.st_mtime_ns)
    return out


TEMP_NAME = re.compile(r"(^\.tmp|\.tmp$|^tmp[\w-]{5,}$|\.partial$|\.incomplete$)")


def check_files(directory: Path, before: dict[str, tuple[int, int]], given: set[bytes]) -> list[Failure]:
    """Every file the run created or changed is complete: parses, and no temporary file is left. A
    byte-for-byte copy of a file the case gave (convert copies tokenizer files as they are) is skipped."""
    failures = []
    after = snapshot(directory)
    for name, stamp in sorted(after.items()):
        if before.get(name) == stamp:
            continue
        path = directory / name
        with contextlib.suppress(OSError):
            if path.read_bytes() in given:
                continue
        if TEMP_NAME.search(path.name) or any(TEMP_NAME.search(p) for p in Path(name).parent.parts):
            failures.append(Failure("corrupt output", _kind_of(path), f"temporary file left: {name}"))
            continue
        problem = file_problem(path)
        if problem:
            failures.append(Failure("corrupt output", _kind_of(path), f"{name}: {problem}"))
    return failures


def _kind_of(path: Path) -> str:
    return path.suffix or path.name


def file_problem(path: Path) -> str | None:
    """Why a written file is not complete, or None."""
    try:
        data = path.read_bytes()
    except OSError as err:
        return f"unreadable ({err})"
    suffix = path.suffix.lower()
    if data.startswith(b"\x89PNG"):  # `plot --out anything.txt` writes a PNG whatever the name
        suffix = ".png"
    try:
        if suffix == ".json":
            json.loads(data.decode("utf-8"))
        elif suffix == ".jsonl":
            text = data.decode("utf-8")
            if text and not text.endswith("\n"):
                return "last line has no newline (cut short?)"
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        json.loads(line)
                    except ValueError as err:
                        return f"line {number} is not JSON ({err})"
        elif suffix in (".yaml", ".yml"):
            yaml.safe_load(data.decode("utf-8"))
        elif suffix == ".safetensors":
            return safetensors_problem(data)
        elif suffix == ".png":
            if not (data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")):
                return "not a complete PNG"
        elif suffix in (".md", ".txt"):
            data.decode("utf-8")
        elif suffix == ".pt":
            import zipfile

            if not zipfile.is_zipfile(path):
                return "not a complete torch.save archive"
    except (ValueError, yaml.YAMLError) as err:
        return f"does not parse ({type(err).__name__}: {str(err)[:200]})"
    return None


def safetensors_problem(data: bytes) -> str | None:
    if len(data) < 8:
        return "shorter than the 8-byte header length"
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        return "header cut short"
    header = json.loads(data[8 : 8 + n])
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != len(data):
        return f"{len(data)} bytes but the header describes {8 + n + end}"
    return None


# ==========================================================================================================
# The fuzz session: runs cases, collects failures, reports counts
# ==========================================================================================================
@dataclasses.dataclass
class Session:
    """One test's cases: runs them in copies of the seed workspace and collects the failures."""

    name: str
    seed: Path
    root: Path
    cases: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failures: list[Failure] = dataclasses.field(default_factory=list)
    hangs: Counter = dataclasses.field(default_factory=Counter)
    notes: Counter = dataclasses.field(default_factory=Counter)
    note_examples: dict = dataclasses.field(default_factory=dict)
    exit_codes: Counter = dataclasses.field(default_factory=Counter)

    def run(
        self, case: Case, extra_check: Callable[[Path, Outcome], str | None] | None = None
    ) -> Outcome | None:
        """Run the case and record its failures; None when it was skipped."""
        if case.target and self.hangs[case.target] >= HANGS_PER_TARGET:
            self.skipped += 1  # this field/option hangs already: do not spend the time limit again
            return None
        directory, before, outcome = self._attempt(case, CASE_TIMEOUT)
        if outcome.hung is not None:  # a loaded machine can stall a quick case: a hang must happen twice
            shutil.rmtree(directory, ignore_errors=True)
            directory, before, retry = self._attempt(case, RETRY_FACTOR * CASE_TIMEOUT)
            self.seconds += outcome.seconds
            if retry.hung is None:
                self.notes[f"finished only on the retry with {RETRY_FACTOR}x the time limit"] += 1
            outcome = retry
        self.cases += 1
        self.seconds += outcome.seconds
        self.exit_codes[outcome.code if outcome.error is None and outcome.hung is None else "-"] += 1
        failures = check_outcome(outcome, case.inputs())
        if not failures:
            given = {
                c.encode("utf-8", "surrogatepass") if isinstance(c, str) else c for c in case.files.values()
            }
            failures = check_files(directory, before, given - {None})  # type: ignore[operator]
        if not failures and outcome.code == EXIT_OK and extra_check is not None:
            problem = extra_check(directory, outcome)
            if problem:
                failures.append(Failure("corrupt output", "", problem))
        for note in stderr_notes(outcome):
            self.notes[note] += 1
            self.note_examples.setdefault(note, (case.describe(), outcome.stderr[-600:]))
        if outcome.hung is not None:
            self.hangs[case.target] += 1
        if failures:
            for failure in failures:
                failure.case = case
            self.failures += failures
            _log(self.name, case, outcome, failures)
            if FAILFAST:
                raise AssertionError(printable(report([failures[0]], outcome)))
        else:
            shutil.rmtree(directory, ignore_errors=True)
        return outcome

    def _attempt(self, case: Case, timeout: float) -> tuple[Path, dict[str, tuple[int, int]], Outcome]:
        """Run the case once in a fresh copy of the workspace: (its directory, the files before, outcome)."""
        directory = self.root / f"case-{self.cases:05d}"
        shutil.copytree(self.seed, directory, symlinks=True)
        for name, content in case.files.items():
            path = directory / name
            if content is None:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            else:
                write(path, content)
        before = snapshot(directory)
        with chdir(directory), fresh_registries(), memory_limit():
            outcome = run_cli(case.argv, stdin=case.stdin, timeout=timeout)
        return directory, before, outcome

    def summary(self) -> str:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.exit_codes.items(), key=str))
        line = (
            f"{self.name}: {self.cases} cases in {self.seconds:.1f} s of t2t time (exit {codes}); "
            f"{len(self.failures)} failing, {len(distinct(self.failures))} distinct"
        )
        if self.skipped:
            line += f"; {self.skipped} skipped after repeated hangs"
        return line

    def assert_no_failures(self) -> None:
        groups = distinct(self.failures)
        if groups:
            text = "\n\n".join(report(group) for group in groups.values())
            raise AssertionError(printable(f"{self.summary()}\n\n{text}"))


def printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def distinct(failures: list[Failure]) -> dict[tuple, list[Failure]]:
    groups: dict[tuple, list[Failure]] = {}
    for failure in failures:
        groups.setdefault(failure.key, []).append(failure)
    return groups


def report(group: list[Failure], outcome: Outcome | None = None) -> str:
    """A failure group: what, where, how often, and its smallest case."""
    smallest = min(group, key=lambda f: len(f.case.describe()) if f.case else 0)
    text = f"[{smallest.kind}] {smallest.where} x{len(group)}\n  {smallest.detail[:1500]}"
    if smallest.case is not None:
        text += f"\n  smallest case:\n    {smallest.case.describe()}"
    if outcome is not None and outcome.stderr:
        text += f"\n  stderr: {outcome.stderr[-800:]}"
    return text


def _log(test: str, case: Case, outcome: Outcome, failures: list[Failure]) -> None:
    if not LOG_FILE:
        return
    record = {
        "test": test,
        "argv": case.argv,
        "files": {k: (None if v is None else repr(v)[:2000]) for k, v in case.files.items()},
        "stdin": repr(case.stdin)[:2000],
        "failures": [{"kind": f.kind, "where": f.where, "detail": f.detail[:2000]} for f in failures],
        "stderr": outcome.stderr[-2000:],
        "seconds": round(outcome.seconds, 2),
    }
    with open(LOG_FILE, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


# ==========================================================================================================
# Introspection: config fields and CLI options, so new ones are fuzzed without editing the tests
# ==========================================================================================================
@dataclasses.dataclass(frozen=True)
class ConfigField:
    path: str  # dotted, as an override names it: "optim.lr"
    annotation: Any
    owner: type


def config_fields(cls: type, prefix: str = "") -> list[ConfigField]:
    """Every field of a StrictConfig dataclass, nested sections included (the section itself too)."""
    from t2t.configbase import StrictConfig

    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        annotation = hints[f.name]
        out.append(ConfigField(prefix + f.name, annotation, cls))
        if isinstance(annotation, type) and issubclass(annotation, StrictConfig):
            out += config_fields(annotation, f"{prefix}{f.name}.")
    return out


def is_mapping(annotation: Any) -> bool:
    return typing.get_origin(annotation) is dict


def is_section(annotation: Any) -> bool:
    from t2t.configbase import StrictConfig

    return isinstance(annotation, type) and issubclass(annotation, StrictConfig)


def base_types(annotation: Any) -> set[type]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(base_types(a) for a in typing.get_args(annotation)))
    if origin is typing.Literal:
        return {type(a) for a in typing.get_args(annotation)}
    return {origin or annotation}


def leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple, Any]:
    """Every runnable command of the CLI (`("tokenizer", "train")`, `("train",)`, ...) and its parser."""
    out: dict[tuple, Any] = {}
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subs:
        for name, sub in action.choices.items():
            out.update(leaf_parsers(sub, (*path, name)))
    if path and not subs:
        out[path] = parser
    return out


def fuzzable_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if not isinstance(a, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction))
    ]


def action_kind(action: argparse.Action) -> str:
    """flag | int | float | choice | device | path | text: which pool of bad values suits an option."""
    if action.nargs == 0:
        return "flag"
    if action.choices:
        return "choice"
    kind = _probe_type(action.type)
    if kind:
        return kind
    name = (action.dest or "").lower()
    if name == "device":
        return "device"
    if name in PATH_DESTS:
        return "path"
    return "text"


PATH_DESTS = {
    "model", "tokenizer", "input", "output", "out", "config", "source", "target", "run_dir", "recipe",
    "tasks", "task",
}  # fmt: skip


def _probe_type(convert: Callable[[str], Any] | None) -> str | None:
    if convert is None:
        return None
    try:
        value = convert("7")
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        return "text"
    if isinstance(value, bool):
        return "text"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "text"


# ==========================================================================================================
# Strategies: the bad values, in one place
# ==========================================================================================================
NAN, INF = float("nan"), float("inf")
HUGE_INTS = (10**20, -(10**20), 2**63, 2**64, 2**31, 10**9)
BAD_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2, -0.0, 0.5, -0.5, 1.5, NAN, INF, -INF, 1e308, 5e-324, *HUGE_INTS,
    "", " ", "abc", "nan", "inf", "3e-4", "1_000", "é", "\x00", "x" * 5000,
    [], [1, 2], ["a"], [None], [NAN], [[1]], {}, {"a": 1}, {"": None},
)  # fmt: skip
EXTREME_NUMBERS: tuple[Any, ...] = (
    0, -1, 1, 2, 10**9, 2**31, 2**53 + 1, 2**63, 2**64, 10**20, -(10**20), 0.0, -0.0, 1e-9, 0.5, 1.5,
    1e308, -1e308, 5e-324, NAN, INF, -INF,
)  # fmt: skip
# What a user may type after `key=` (read as YAML by the CLI): YAML's number, null and boolean spellings,
# tags, anchors, broken flow collections, dates and sexagesimals.
OVERRIDE_TEXTS = (
    "", " ", "~", "null", "Null", "true", "yes", "no", "on", "off", "0", "-0", "1", "-1", "+1", "2",
    "0x10", "0o10", "0b11", "1_000", "1e3", "3e-4", "3.0e-4", "1e400", "-1e400", ".nan", ".NaN", "nan",
    "NaN", ".inf", "-.inf", "inf", "-inf", "100000000000000000000", "-100000000000000000000",
    "9223372036854775808", "18446744073709551616", "2147483648", "1000000000", "0.5", "-0.5", "1.5",
    "abc", "'abc'", '"1"', "[]", "[1, 2]", "[a]", "[.nan, .nan]", "{}", "{a: 1}", "[", "{", "'", "]",
    "&a [*a]", "*a", "!!binary aGk=", "!!python/object/apply:os.system [true]", "!!float 1", "!!int x",
    "2024-01-01", "2024-01-01 12:00:00", "12:30", "1:2:3", "- a", "a: b", "? x", "|", ">", "---", "...",
    "#comment", "a #b", "é", "\t", "x" * 5000, "caf\udce9",
)  # fmt: skip
INT_TEXTS = (
    "-1", "0", "-0", "1", "2", "100000000000000000000", "-100000000000000000000", "9223372036854775808",
    "2147483648", "1000000000", "nan", "inf", "-inf", "1.5", "1e3", "abc", "", " ", "0x10", " 3",
    "1_000", "\u0663", "+7", "--1", "١٠٠٠٠٠٠٠٠٠٠٠٠",
)  # fmt: skip
FLOAT_TEXTS = (
    "nan", "-nan", "NaN", "inf", "-inf", "Infinity", "-1", "0", "-0", "1e308", "1e400", "-1e400",
    "1e-320", "5e-324", "1", "2", "100000000000000000000", "abc", "", "0x10", "1_0.5", "1,5", " 0.5",
)  # fmt: skip
DEVICE_TEXTS = (
    "", "meta", "xla", "cuda:99", "cuda:-1", "cuda:", "cuda:x", "cuda:100000000000000000000", "cpu:0",
    "cpu:1", "cpu:-1", "mps:0", "tpu", "gpu", "CPU", "auto:0", "cuda,cpu", "-", "nan", "é",
)  # fmt: skip
PATH_TEXTS = (
    "missing", "missing/deeper/x", "afile.txt", "bin.dat", "emptydir", "emptydir/", "afile.txt/sub",
    "", ".", "..", "-", "x" * 300, "caf\udce9", "~nouser/x", "emptydir/../afile.txt", "tok", "ckpt",
    "ckpt/config.json", "ckpt/model.safetensors", "tok/spiece.model", "run", "run/metrics.jsonl",
    "recipe.yaml", "tasks.yaml", "model.yaml", "ft.yaml", "prompts.jsonl", "data/numbers",
    "data/numbers/train.jsonl", "corpus.txt", "hf:nosuch/dataset",
)  # fmt: skip
TEXTS = (
    "", " ", "-", "--", "-x", "--nope", "nan", "é", "\t", "a\nb", "x" * 5000, "caf\udce9", "<extra_id_0>",
    "</s>", "0", "-1", "none", "None", "true",
)  # fmt: skip


def _printable_yaml(value: Any) -> str:
    """A Python value as a user would type it after `key=` (flow-style YAML; a string as itself)."""
    if isinstance(value, str):
        return value
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9)
    return text.removesuffix("\n...\n").strip()


def bad_value() -> st.SearchStrategy[Any]:
    """A wrong Python value for any config field (as a YAML file holds it)."""
    return st.one_of(
        st.sampled_from(BAD_VALUES),
        st.integers(min_value=-3, max_value=3),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
    )


def field_value(annotation: Any = Any) -> st.SearchStrategy[Any]:
    """A bad value for a field of this type: mostly the extremes of its own type (the values a range check
    must stop: 10**20, NaN, 5e-324, a missing file), the rest any wrong value."""
    types = base_types(annotation)
    own: list[st.SearchStrategy[Any]] = []
    if types & {int, float}:
        own.append(st.sampled_from(EXTREME_NUMBERS))
    if str in types:
        own.append(st.sampled_from(PATH_TEXTS + TEXTS + DEVICE_TEXTS))
    if list in types:
        items = st.one_of(st.sampled_from(EXTREME_NUMBERS), st.sampled_from(TEXTS))
        own.append(st.lists(items, max_size=3))
    return st.one_of(*own, *own, bad_value()) if own else bad_value()


def bad_override_text(annotation: Any = Any) -> st.SearchStrategy[str]:
    """The text after `key=`: YAML spellings, or a bad value of the field's type rendered as YAML."""
    return st.one_of(
        st.sampled_from(OVERRIDE_TEXTS), field_value(annotation).map(_printable_yaml), st.text(max_size=12)
    )


def typos(name: str) -> list[str]:
    """Misspellings of a (dotted) key: a letter dropped, doubled or swapped, case, dashes, plural."""
    *head, last = name.split(".")
    prefix = ".".join(head) + "." if head else ""
    out = set()
    for i in range(len(last)):
        out.add(last[:i] + last[i + 1 :])
        out.add(last[:i] + last[i] + last[i:])
        if i + 1 < len(last):
            out.add(last[:i] + last[i + 1] + last[i] + last[i + 2 :])
    out |= {last.upper(), last.replace("_", "-"), last + "s", last.replace("_", "")}
    keys = {prefix + t for t in out if t and t != last}
    if head:  # the section misspelt too, and the key at the wrong level
        keys |= {".".join([head[0][:-1], *head[1:], last]), last, f"{name}.{last}"}
    return sorted(keys - {name})


def malformed_keys() -> st.SearchStrategy[str]:
    """Whole override items that are not `known.key=value`."""
    return st.one_of(
        st.sampled_from(
            (
                "=1", "novalue", "a.b.c.d=1", "optim..lr=1", ".lr=1", "optim.=1", " optim.lr=1",
                "optim.lr.x=1", "model.overrides.d_model=8", "data.options.noise_density=0.5", "==",
                "optim=1", "optim=[1]", "optim={lr: 1}", "optim={nosuch: 1}", "model=null",
                "data.replay=[]", "\u00e9=1", "x" * 300 + "=1", "caf\udce9=1", "eval.tasks=[nosuch]",
            )
        ),
        st.text(max_size=15),
        st.builds(lambda k, v: f"{k}={v}", st.from_regex(r"[a-z_.]{1,20}", fullmatch=True), st.sampled_from(("1", ""))),
    )  # fmt: skip


def option_value(kind: str, action: argparse.Action) -> st.SearchStrategy[str]:
    """A bad (or at least odd) command-line value for an option of this kind."""
    pools = {
        "int": INT_TEXTS,
        "float": FLOAT_TEXTS,
        "device": DEVICE_TEXTS,
        "path": PATH_TEXTS,
        "text": TEXTS,
        "choice": tuple(
            [*(s for c in action.choices or () for s in typos(str(c))[:4]), "", "NONE", "x", "é"]
        ),
    }
    return st.one_of(st.sampled_from(pools.get(kind, TEXTS)), st.sampled_from(TEXTS), st.text(max_size=10))


# ---- malformed files ---------------------------------------------------------------------------------------
GOOD_RECORD = {"inputs": "one two", "targets": "eins zwei"}


def _jsonl(records: list[Any]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def malformed_jsonl(fields: dict[str, Any] | None = None) -> st.SearchStrategy[bytes]:
    """JSON Lines of records like `fields`, broken in one of the ways real files are."""
    good = fields or GOOD_RECORD
    text = _jsonl([good] * 3)
    key = next(iter(good))
    wrong_field_values = [None, 5, 1.5, True, [], ["a"], {}, "", " ", NAN, 10**20, "\ud800", "\x00"]
    return st.one_of(
        st.just(b""),
        st.sampled_from([b"\n", b"\n\n\n", b"   \n\t\n", b"\x00", b"\xef\xbb\xbf", b"\r\n"]),
        st.integers(1, len(text) - 1).map(lambda n: text[:n].encode()),  # truncated
        st.binary(min_size=1, max_size=200),  # garbage
        st.just(("\ufeff" + text).encode()),  # byte order mark
        st.just(text.replace("\n", "\r\n").encode()),  # CRLF
        st.just(text.replace("\n", "\r").encode()),  # old Mac line ends
        st.sampled_from(["5", '"text"', "[1, 2]", "null", "true", "[]", "{}", "NaN", "1e999"]).map(
            lambda line: (text + line + "\n").encode()
        ),  # non-object lines
        st.sampled_from(wrong_field_values).map(lambda v: _wrong_field(good, key, v)),
        st.sampled_from([{}, {"input": "a", "target": "b"}, {k.upper(): v for k, v in good.items()}]).map(
            lambda r: _jsonl([good, r]).encode()
        ),  # wrong or missing fields
        st.just(text.encode() + "\xe9\n".encode("latin-1")),  # not UTF-8
        # a huge line (20,000 tokens: a span-corruption validation loss over it takes ~3 s; 10x, ~45 s)
        st.just((_jsonl([{**good, key: "é" * 20_000}])).encode()),
        st.just(("[" * 100_000 + "]" * 100_000 + "\n").encode()),  # deep nesting
        st.just((text + '{"inputs": "a", "inputs": 5, "targets": "b"}\n').encode()),  # duplicate key
        st.just((text[:-1] + "\x00\n").encode()),
        st.just(text.replace('"', "'").encode()),  # Python repr, not JSON
    )


def _wrong_field(good: dict[str, Any], key: str, value: Any) -> bytes:
    record = {**good, key: value}
    return json.dumps(record, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass") + b"\n"


def malformed_table(header: list[str], row: list[str], delimiter: str) -> st.SearchStrategy[bytes]:
    """A TSV / CSV file broken: wrong column counts, quotes, BOM, CRLF, NUL, huge cells, no header."""
    d = delimiter

    def table(*rows: list[str]) -> str:
        return "".join(d.join(r) + "\n" for r in rows)

    good = table(header, row, row)
    return st.one_of(
        st.just(b""),
        st.just(table(header).encode()),  # header only
        st.just(table(row, row).encode()),  # no header
        st.just(table(header, [*row, "extra"]).encode()),
        st.just(table(header, row[:-1]).encode()),
        st.just(table(header, [row[0] + d + "x", *row[1:]]).encode()),
        st.just(("\ufeff" + good).encode()),
        st.just(good.replace("\n", "\r\n").encode()),
        st.just(good.replace("\n", "\r").encode()),
        st.just(table(header, ['"unterminated ' + row[0], *row[1:]]).encode()),
        st.just(table(header, [row[0] + "\x00", *row[1:]]).encode()),
        st.just(table(header, ["x" * 200_000, *row[1:]]).encode()),
        st.just(table(header, [row[0], *["" for _ in row[1:]]]).encode()),
        st.just(table(header, [row[0], *["nan" for _ in row[1:]]]).encode()),
        st.just(table(header, [row[0], *["99999999999999999999" for _ in row[1:]]]).encode()),
        st.just(table([h.upper() for h in header], row).encode()),
        st.just(good.encode() + b"\xff\xfe\n"),
        st.integers(1, len(good) - 1).map(lambda n: good[:n].encode()),
        st.binary(min_size=1, max_size=200),
    )


def malformed_text() -> st.SearchStrategy[bytes]:
    """A plain-text corpus that is empty, blank, binary, not UTF-8, one huge line, or odd Unicode."""
    return st.one_of(
        st.sampled_from(
            [
                b"",
                b"\n",
                b"   \n\t\n",
                b"\x00\x00\n",
                b"\xef\xbb\xbf",
                b"\xff\xfe\x00a\x00",
                b"a",
                b"\r\n\r\n",
            ]
        ),
        st.binary(min_size=1, max_size=300),
        st.just(("word " * 60_000).encode()),
        st.just(b"hello \xe9 world\n" * 5),
        st.just(("\U0001f600" * 1000 + "\n").encode()),
        st.just("".join(chr(c) for c in range(0x300, 0x370)).encode() + b"\n"),
        st.text(min_size=1, max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    )


def malformed_yaml() -> st.SearchStrategy[bytes]:
    """A YAML (or JSON) config file that is garbage, truncated, the wrong shape or dangerous."""
    return st.one_of(
        st.sampled_from(
            [
                "", "\n", "~\n", "5\n", "[1, 2]\n", "text\n", "- a\n- b\n", "{\n", "a: [\n", "a: b: c\n",
                "!!python/object/apply:os.system ['true']\n", "&a [*a]\n", "a: &a [*a]\n",
                "\t a: 1\n", "a: 1\na: 2\n", "? [a]\n: 1\n", "%TAG ! x\n", "--- 1\n--- 2\n",
                "a: 1e999\n", "a: .nan\n", "\x00\n", "\ufeffa: 1\n",
                "x: " + "[" * 5000 + "]" * 5000 + "\n", "a: *b\n", "{a: 1}}\n",
            ]
        ).map(lambda s: s.encode("utf-8")),
        st.binary(min_size=1, max_size=200),
        st.just(b"a: \xe9\n"),
    )  # fmt: skip


def metrics_records() -> st.SearchStrategy[bytes]:
    """A run's metrics.jsonl with records that are not what t2t train writes."""
    record = st.one_of(
        st.fixed_dictionaries(
            {
                "kind": st.sampled_from(["train", "eval", "scheduled_sampling", "", None, 5, "x"]),
                "step": st.one_of(st.integers(-3, 3), st.sampled_from([None, "1", 1.5, NAN, 10**20, True])),
            },
            optional={
                "loss": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([None, "x", 10**20, True, [], {}])),
                "lr": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["x", None])),
                "tokens_per_s": st.floats(allow_nan=True, allow_infinity=True),
                "ss_prob": st.sampled_from([NAN, INF, "x", None, 0.5]),
                "numbers/bleu": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([True, "x", None, 10**20])),
                "eval_loss": st.floats(allow_nan=True, allow_infinity=True),
            },
        ),
        st.sampled_from([5, "text", [1, 2], None, True, [], {}]),
    )  # fmt: skip
    return st.lists(record, min_size=0, max_size=6).map(
        lambda rs: "".join(json.dumps(r, allow_nan=True) + "\n" for r in rs).encode()
    ) | malformed_jsonl({"kind": "train", "step": 1, "loss": 1.0})
