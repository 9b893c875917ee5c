"""Where a checkpoint's files are: a local directory as it is, or a Hugging Face hub repo id downloaded
into (or found in) the hub's cache. Models and tokenizers both resolve names here."""

from __future__ import annotations

import os
from pathlib import Path

from t2t.errors import CheckpointError
from t2t.utils.io import user_path

_HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt"]
TOKENIZER_FILES = ["*.json", "*.model", "*.txt"]


def resolve(name_or_path: str | Path, revision: str | None = None, patterns: list[str] | None = None) -> Path:
    """A local directory as it is; anything else is a hub repo id, downloaded (or found in the cache).
    `patterns` limits the download (e.g. TOKENIZER_FILES: a tokenizer needs no weights)."""
    patterns = patterns or _HUB_FILES
    path = user_path(name_or_path)
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path} is a file; pass the checkpoint directory that holds it")
    name = str(name_or_path)
    if name.count("/") > 1 or name.startswith((".", "/", "~")):
        raise CheckpointError(f"{name}: no such directory")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, revision=revision, allow_patterns=patterns))
    except Exception as err:
        try:  # the download failed (offline?); the local cache may still have it
            return Path(
                snapshot_download(name, revision=revision, allow_patterns=_HUB_FILES, local_files_only=True)
            )
        except Exception:
            pass
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        why = "HF_HUB_OFFLINE=1 is set" if offline else f"{type(err).__name__}"
        raise CheckpointError(
            f"cannot fetch {name!r} from the Hugging Face hub ({why}); if you are offline, pass a local "
            "directory with config.json and model.safetensors (e.g. one written by save_pretrained)"
        ) from None
