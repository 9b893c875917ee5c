"""`t2t generate`: answer one prompt (streamed to the terminal) or a JSONL file of prompts (in batches).

Prompts come from a source (the positional prompt, or --input); a new source, such as few-shot prompts
built from a task, is one more branch in `run` and one more reader like `read_jsonl`. The decoding
flags are shared with other commands through `add_decoding_arguments` / `decoding_options`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2t.cli.common import (
    add_device_argument,
    any_int,
    check_output_file,
    example_epilog,
    finite_float,
    non_negative_float,
    non_negative_int,
    positive_int,
    resolve_device,
    warnings_as_lines,
)
from t2t.errors import DataError, T2TError

EXAMPLE = (
    'python -c "import this" > zen.txt',
    "t2t tokenizer train --input zen.txt --vocab-size 200 --out ckpt",
    "python -c \"import t2t; t2t.build_model(t2t.preset('t5-tiny', vocab_size=256)).save_pretrained('ckpt')\"",
    't2t generate --model ckpt "Beautiful is better than" --max-new-tokens 8',
    'echo \'{"prompt": "Simple is better than"}\' > prompts.jsonl',
    "t2t generate --model ckpt --input prompts.jsonl --output answers.jsonl --num-beams 4",
)
PROMPT_KEYS = ("prompt", "inputs")  # "inputs": the key of t2t's {"inputs", "targets"} examples
DEFAULT_MAX_NEW_TOKENS = 64
EARLY_STOPPING = {"true": True, "false": False, "never": "never"}


def early_stopping(text: str) -> bool | str:
    """true / false / never, as transformers' early_stopping=True / False / "never"."""
    try:
        return EARLY_STOPPING[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of true, false, never") from None


def token_ids(text: str) -> list[int]:
    """'5' or '5,9' (several end tokens); 'none' switches stopping at an end token off."""
    if text.strip().lower() == "none":
        return []
    return [non_negative_int(part.strip()) for part in text.split(",")]


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("decoding (transformers' generate() options)")
    g.add_argument("--max-new-tokens", type=positive_int, default=DEFAULT_MAX_NEW_TOKENS, help="(64)")
    g.add_argument(
        "--min-new-tokens", type=non_negative_int, default=None, help="no end-of-sequence before this many"
    )
    g.add_argument(
        "--num-beams", type=positive_int, default=None, help="beam search with N beams (1: greedy)"
    )
    g.add_argument(
        "--length-penalty", type=finite_float, default=None, help="beam score / length**alpha (1.0)"
    )
    g.add_argument(
        "--early-stopping",
        type=early_stopping,
        default=None,
        metavar="{true,false,never}",
        help="beam search stops at num_beams finished (true), by a heuristic (false, default) or only when "
        "no better hypothesis can exist (never)",
    )
    g.add_argument(
        "--length-penalty-style",
        choices=["hf", "gnmt"],
        default=None,
        help="hf: logp/len**alpha (default); gnmt: logp/((5+len)/6)**alpha (T5 paper: beam 4, alpha 0.6)",
    )
    g.add_argument("--do-sample", action="store_true", help="sample instead of taking the most likely token")
    g.add_argument(
        "--temperature",
        type=non_negative_float,
        default=None,
        help="sampling temperature (1.0; sampling only)",
    )
    g.add_argument(
        "--top-k",
        type=non_negative_int,
        default=None,
        help="sample from the k most likely tokens (50; 0: all)",
    )
    g.add_argument("--top-p", type=non_negative_float, default=None, help="nucleus sampling mass (1.0: off)")
    g.add_argument("--repetition-penalty", type=non_negative_float, default=None, help="(1.0: off)")
    g.add_argument(
        "--no-repeat-ngram-size",
        type=non_negative_int,
        default=None,
        help="ban repeated n-grams of this size",
    )
    g.add_argument("--num-return-sequences", type=positive_int, default=None, help="answers per prompt (1)")
    g.add_argument(
        "--eos-token-id",
        type=token_ids,
        default=None,
        metavar="ID[,ID...]",
        help="end-of-sequence id(s) (the model's); none: generate to --max-new-tokens",
    )
    g.add_argument(
        "--pad-token-id", type=non_negative_int, default=None, metavar="ID", help="padding id (the model's)"
    )
    g.add_argument("--seed", type=any_int, default=None, help="makes sampling reproducible")


def decoding_options(args: argparse.Namespace) -> dict[str, Any]:
    """The GenerationConfig fields the flags set (unset flags keep the config's defaults)."""
    names = [
        "max_new_tokens",
        "min_new_tokens",
        "num_beams",
        "length_penalty",
        "length_penalty_style",
        "early_stopping",
        "temperature",
        "top_k",
        "top_p",
        "repetition_penalty",
        "no_repeat_ngram_size",
        "num_return_sequences",
        "eos_token_id",
        "pad_token_id",
        "seed",
    ]
    options = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.do_sample:
        options["do_sample"] = True
    return options


# --dtype / --quantize: the weights' precision (from_pretrained's dtype= and quantize=).
DTYPE_CHOICES = ("float32", "bfloat16", "float16", "auto")
QUANTIZE_CHOICES = ("none", "int8", "int8-dynamic", "int8-weight-only")


def add_precision_arguments(parser: argparse.ArgumentParser) -> None:
    """--dtype and --quantize (also used by t2t eval); `precision_options(args)` reads them."""
    g = parser.add_argument_group("precision (docs/generation.md: reduced precision)")
    g.add_argument(
        "--dtype",
        choices=DTYPE_CHOICES,
        default=None,
        help="dtype of the weights and the computation (float32; auto: as stored; bfloat16 where the CPU "
        "has AVX-512 BF16 or on a GPU)",
    )
    g.add_argument(
        "--quantize",
        choices=QUANTIZE_CHOICES,
        default=None,
        help="int8 linear layers, embedding and vocabulary projection: int8 (= int8-dynamic: activations "
        "quantised at run time, the fastest on CPU) or int8-weight-only; a directory saved quantised loads "
        "quantised without it",
    )


def precision_options(args: argparse.Namespace) -> dict[str, Any]:
    """load_pipeline's / from_pretrained's dtype= and quantize= from the flags."""
    return {"dtype": args.dtype, "quantize": args.quantize}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate text with a model: one prompt streamed, or a JSONL file of prompts in batches",
        description="Load the model and tokenizer of a checkpoint directory and answer a prompt (streamed to "
        'the terminal) or every line of a JSONL file ({"prompt": ...} or {"inputs": ...} per line; the '
        'answers file repeats each record with an "output" field, in the same order, written atomically).\n'
        "The example builds a random (untrained) model, so its answers are noise.",
        epilog=example_epilog(*EXAMPLE),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory (model + tokenizer)")
    p.add_argument("prompt", nargs="?", help="a prompt to answer (streamed); or use --input")
    p.add_argument("--input", metavar="FILE", help="JSONL file of prompts")
    p.add_argument("--output", metavar="FILE", help="JSONL file for the answers (default: standard output)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="prompts per batch (8)")
    p.add_argument(
        "--no-truncate",
        action="store_true",
        help="refuse prompts longer than the model takes (default: cut them, with a warning)",
    )
    g = p.add_argument_group("few-shot evaluation (no parameter update)")
    g.add_argument("--task", help="score K-shot prompts of a task: sentiment, acceptability, paraphrase, ...")
    g.add_argument(
        "--shots",
        type=non_negative_int,
        default=0,
        metavar="K",
        help="solved training examples per prompt (0)",
    )
    g.add_argument("--limit", type=positive_int, default=None, help="score the first N test examples")
    add_device_argument(p)
    add_precision_arguments(p)
    add_decoding_arguments(p)
    p.set_defaults(handler=run)


@dataclass
class Record:
    line: int
    data: dict[str, Any]
    prompt: str


def read_jsonl(path: Path) -> list[Record]:
    """Prompt records from a JSONL file; every problem names its file:line."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    records = []
    with open(path, encoding="utf-8") as fh:
        try:
            for number, text in enumerate(fh, start=1):
                if text.strip():
                    records.append(_record(path, number, text))
        except UnicodeDecodeError as err:
            raise DataError(
                f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8"
            ) from None
    if not records:
        raise DataError(f"{path}: no prompts in the file; write one JSON object per line")
    return records


def _record(path: Path, number: int, text: str) -> Record:
    where = f"{path}:{number}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(
            f'{where}: not valid JSON ({err.msg}, column {err.colno}); write one object like {{"prompt": "..."}}'
        ) from None
    except RecursionError:
        raise DataError(
            f'{where}: JSON nested too deeply; write one object like {{"prompt": "..."}}'
        ) from None
    if isinstance(value, str):
        value = {"prompt": value}
    if not isinstance(value, dict):
        raise DataError(f'{where}: expected an object like {{"prompt": "..."}}, got {type(value).__name__}')
    key = next((k for k in PROMPT_KEYS if k in value), None)
    if key is None:
        raise DataError(
            f'{where}: no "prompt" (or "inputs") field; found {", ".join(map(repr, value)) or "none"}'
        )
    if not isinstance(value[key], str):
        raise DataError(f'{where}: "{key}" should be a string, got {type(value[key]).__name__}')
    return Record(number, value, value[key])


def run(args: argparse.Namespace) -> int:
    if args.task is not None:
        return _answer_task(args)
    if (args.prompt is None) == (args.input is None):
        raise T2TError('give one prompt (t2t generate --model DIR "text") or --input prompts.jsonl, not both')
    if args.output is not None and args.input is None:
        raise T2TError("--output goes with --input; a single prompt's answer is printed")
    if args.output not in (None, "-"):
        check_output_file(args.output, "--output ")  # before the model loads and the prompts are answered
    from t2t.generation import load_pipeline
    from t2t.generation.search import resolve_config

    device = resolve_device(args.device)
    with warnings_as_lines("generate"):
        pipe = load_pipeline(
            args.model,
            device=device,
            truncate=not args.no_truncate,
            batch_size=args.batch_size,
            **precision_options(args),
        )
        config = resolve_config(pipe.model, pipe.config, **decoding_options(args))  # bad values fail here
        if args.input is None:
            return _answer_one(pipe, args.prompt, config)
        return _answer_file(pipe, Path(args.input), args.output, config)


def _answer_task(args: argparse.Namespace) -> int:
    """--task NAME --shots K: K-shot prompts from the task's training split, scored on its test split."""
    if args.prompt is not None or args.input is not None:
        raise T2TError("--task builds its own prompts; leave out the prompt and --input")
    from t2t.finetune.fewshot import run_fewshot
    from t2t.generation import load_pipeline
    from t2t.generation.search import resolve_config
    from t2t.train.recipes import fewshot_spec

    spec = fewshot_spec(args.task)  # an unknown task fails before the model loads
    pipe = load_pipeline(
        args.model, device=resolve_device(args.device), batch_size=args.batch_size, **precision_options(args)
    )
    config = resolve_config(pipe.model, pipe.config, **decoding_options(args))
    report = run_fewshot(pipe, args.task, spec, args.shots, limit=args.limit, **config.to_dict())
    scores = "  ".join(f"{k} {v:.2f}" for k, v in report.scores.items())
    print(f"{report.task} ({report.shots}-shot): {scores}")
    return 0


def _answer_one(pipe, prompt: str, config) -> int:  # type: ignore[no-untyped-def]
    options = config.to_dict()
    if config.num_return_sequences > 1:
        for answer in pipe(prompt, **options):
            print(answer, flush=True)
        return 0
    for piece in pipe.stream(prompt, **options):
        print(piece, end="", flush=True)
    print(flush=True)
    return 0


def _answer_file(pipe, path: Path, output: str | None, config) -> int:  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    from t2t.utils.io import atomic_open

    records = read_jsonl(path)
    labels = [f"{path}:{r.line}" for r in records]
    with tqdm(total=len(records), unit="prompt", desc="generate", file=sys.stderr, disable=None) as bar:
        answers = pipe([r.prompt for r in records], labels=labels, progress=bar.update, **config.to_dict())
    lines = [json.dumps({**r.data, "output": a}, ensure_ascii=False) + "\n" for r, a in zip(records, answers)]
    if output is None or output == "-":
        sys.stdout.writelines(lines)
    else:
        try:
            with atomic_open(output) as fh:  # a failure leaves an existing file as it was
                fh.writelines(lines)
        except OSError as err:
            raise T2TError(
                f"{output}: cannot write the answers ({err.strerror or err}); check the path and free space"
            ) from None
        print(f"t2t generate: {len(lines)} answers written to {output}", file=sys.stderr)
    return 0
