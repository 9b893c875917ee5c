"""`t2t convert`: a Hugging Face checkpoint directory into a t2t one, and back.

The weights go through t2t.hub (from_pretrained, then save_pretrained in the other format); tokenizer
files, which both formats share, are copied as they are. The new directory is built beside the target
under a temporary name, checked (it reloads to the same tensors), and only then renamed into place, so
an error or Ctrl-C never leaves a half-written checkpoint.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from t2t.cli.common import check_new_dir, example_epilog
from t2t.errors import CheckpointError

EXAMPLE = (
    "python -c \"import t2t; t2t.build_model(t2t.preset('t5-tiny')).save_pretrained('hf-t5')\"",
    "t2t convert --from hf-t5 --to t2t-t5            # Hugging Face -> t2t (t2t_config.json)",
    "t2t convert --from t2t-t5 --to hf-again         # and back (config.json, transformers loads it)",
)
FORMATS = ("hf", "t2t")
SHARED_FILES = ("added_tokens.json", "tokenizer.model", "generation_config.json")  # beside TOKENIZER_FILES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a checkpoint between the Hugging Face and t2t formats",
        description="Read the checkpoint in --from (Hugging Face: config.json, or t2t: t2t_config.json, with "
        "its weights) and write it to --to in the other format, or the one --format names, tokenizer files "
        "included. Hugging Face checkpoints of T5 (v1.1, Flan, mT5), BERT, GPT-2 and Llama are supported.",
        epilog=example_epilog(*EXAMPLE),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--from", dest="source", required=True, metavar="DIR", help="checkpoint directory to read")
    p.add_argument("--to", dest="target", required=True, metavar="DIR", help="new checkpoint directory")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="format to write (default: the other one than --from's)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace --to if it exists and is not empty")
    p.set_defaults(handler=run)


def source_format(directory: Path) -> str:
    from t2t.hub import T2T_CONFIG

    if not directory.is_dir():
        raise CheckpointError(f"--from {directory}: no such directory; give a checkpoint directory")
    if (directory / T2T_CONFIG).is_file():
        return "t2t"
    if (directory / "config.json").is_file():
        return "hf"
    raise CheckpointError(f"{directory}: neither {T2T_CONFIG} nor config.json; not a model checkpoint")


def _check_target(source: Path, target: Path, overwrite: bool) -> None:
    if target.resolve() == source.resolve():
        raise CheckpointError(f"--to {target} is the --from directory; write the conversion somewhere else")
    check_new_dir(target, "--to ", overwrite)


def _copy_shared_files(source: Path, target: Path) -> list[str]:
    from t2t.tokenizer.files import TOKENIZER_FILES

    copied = []
    for name in (*TOKENIZER_FILES, *SHARED_FILES):
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
            copied.append(name)
    return copied


def _verify(model: Any, directory: Path) -> int:
    """Reload what was written; every tensor must come back bit for bit."""
    import torch

    from t2t.hub import from_pretrained

    expected = model.state_dict()
    reloaded = from_pretrained(directory).state_dict()
    for key, tensor in expected.items():
        if key not in reloaded or not torch.equal(reloaded[key], tensor):
            raise CheckpointError(
                f"{directory}: weight {key!r} did not survive the conversion; nothing written"
            )
    return len(expected)


def _replace_dir(built: Path, target: Path) -> None:
    """Move built to target; an existing target is set aside first and removed once the move is done."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(built, target)
    if old is not None:
        shutil.rmtree(old)


def convert(
    source: Path,
    target: Path,
    fmt: str | None = None,
    *,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Convert the checkpoint in source into target (format fmt, default: the other one)."""
    from t2t.hub import from_pretrained
    from t2t.interop.hf import family_for_config

    kind = source_format(source)
    fmt = fmt or ("t2t" if kind == "hf" else "hf")
    _check_target(source, target, overwrite)
    model = from_pretrained(source)
    if fmt == "hf" and family_for_config(model.config) is None:
        raise CheckpointError(
            f"{source}: this {model.config.arch} model (norm={model.config.norm}, position={model.config.position}, "
            f"ffn={model.config.ffn}) has no Hugging Face transformers equivalent; keep it in the t2t format"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    built = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        model.save_pretrained(built, format=fmt)
        copied = _copy_shared_files(source, built)
        tensors = _verify(model, built)
        _replace_dir(built, target)
    finally:
        if built.exists():
            shutil.rmtree(built)
    missing = getattr(model, "missing_weights", [])
    log(f"t2t convert: {source} ({kind}) -> {target} ({fmt}): {tensors} tensors, reloaded identical")
    log(
        f"  tokenizer and shared files copied: {', '.join(copied) if copied else 'none (no tokenizer in --from)'}"
    )
    if missing:
        log(f"  note: {len(missing)} weights absent from --from were freshly initialised, e.g. {missing[0]}")
    return target


def run(args: argparse.Namespace) -> int:
    convert(Path(args.source), Path(args.target), args.format, overwrite=args.overwrite)
    return 0
