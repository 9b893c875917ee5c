"""`t2t peft merge`: fold a LoRA adapter into its base model's weights, for export.

The adapter directory is one that t2t wrote (a LoRA run's checkpoint, or `save_adapter`) or one that
Hugging Face PEFT wrote (adapter_config.json + adapter_model.safetensors). The merged model is an ordinary
checkpoint directory (Hugging Face format where transformers has the model), with the base's tokenizer
files (or the adapter directory's, where it has them). Before anything is written, the merged model's
logits on a few token rows are compared with the unmerged model's; the new directory is built under a
temporary name and renamed into place.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from t2t.cli.common import check_new_dir, example_epilog
from t2t.cli.convert import _copy_shared_files, _replace_dir
from t2t.errors import CheckpointError

EXAMPLE = (
    "t2t train --config configs/finetune_multitask.yaml peft.method=lora run_dir=runs/lora",
    "t2t peft merge --model google/flan-t5-small --adapter runs/lora/checkpoints/best --out flan-merged",
)
AGREEMENT = 1e-3  # largest |logit difference| merged vs unmerged, relative to the largest |logit|


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "peft",
        help="LoRA adapters: merge one into its base model",
        description="Parameter-efficient fine-tuning tools. `merge` folds a LoRA adapter (t2t's or Hugging "
        "Face PEFT's adapter directory) into the base model's weights and writes the merged model.",
        epilog=example_epilog(*EXAMPLE),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    merge = actions.add_parser(
        "merge",
        help="fold an adapter into the base weights",
        description="Load --model (the base the adapter was trained on), apply the LoRA adapter in "
        "--adapter, fold it into the weights (W + scale * B A) and write the merged model to --out.",
        epilog=example_epilog(EXAMPLE[1]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    merge.add_argument("--model", required=True, metavar="BASE", help="base model directory (or hub name)")
    merge.add_argument("--adapter", required=True, metavar="DIR", help="adapter directory (t2t or PEFT)")
    merge.add_argument("--out", required=True, metavar="OUT", help="new model directory")
    merge.add_argument("--format", choices=("auto", "hf", "t2t"), default="auto", help="weights format")
    merge.add_argument("--overwrite", action="store_true", help="replace --out if it exists and is not empty")
    p.set_defaults(handler=run)


def _probe_logits(model: Any) -> Any:
    """The model's logits on two fixed rows of tokens (a decoder start for encoder-decoders)."""
    import torch

    ids = torch.arange(16).remainder(model.config.vocab_size - 1).add(1).view(2, 8)
    if model.config.task_head == "multiple-choice":
        ids = ids[None]  # one question with two choices
    with torch.no_grad():
        if model.config.arch == "encoder-decoder":
            start = torch.full((2, 1), model.config.decoder_start_id or 0)
            out = model(ids, decoder_input_ids=start)
        else:
            out = model(ids)
    return (out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state).float()


def merge_adapter(
    base: str, adapter: Path, out: Path, fmt: str = "auto", *, overwrite: bool = False
) -> float:
    """Write base + adapter, merged, to out; returns the largest |logit difference| merged vs unmerged."""
    from t2t.hub import from_pretrained
    from t2t.peft.adapter import AdapterLinear
    from t2t.peft.files import has_adapter, load_adapter
    from t2t.peft.inject import merge, wrapped_layers

    if not adapter.is_dir() or not has_adapter(adapter):
        raise CheckpointError(
            f"--adapter {adapter}: no adapter_config.json nor t2t_adapter.json; not an adapter"
        )
    check_new_dir(out, "--out ", overwrite)
    model = from_pretrained(base, adapter=False).eval()
    load_adapter(model, adapter)
    if any(isinstance(layer, AdapterLinear) for _, layer in wrapped_layers(model)):
        raise CheckpointError(
            f"--adapter {adapter}: bottleneck adapters (method=adapter) are not linear and cannot be merged; "
            "load the checkpoint with t2t.from_pretrained instead"
        )
    model.eval()
    before = _probe_logits(model)
    merge(model)
    gap = float((_probe_logits(model) - before).abs().max())
    if gap > AGREEMENT * max(1.0, float(before.abs().max())):
        raise CheckpointError(
            f"the merged model's logits differ from the unmerged ones by {gap:.3g}; nothing written"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    built = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        model.save_pretrained(built, format=fmt)
        base_dir = Path(base)
        copied = _copy_shared_files(adapter, built)
        if not copied and base_dir.is_dir():
            _copy_shared_files(base_dir, built)
        _replace_dir(built, out)
    finally:
        if built.exists():
            shutil.rmtree(built)
    return gap


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    gap = merge_adapter(args.model, Path(args.adapter), out, args.format, overwrite=args.overwrite)
    print(
        f"t2t peft merge: {args.model} + {args.adapter} -> {out}; merged vs unmerged logits within {gap:.2g}"
    )
    return 0
