"""Optional features and the extra that installs each: `pip install 't2t[plot]'` and so on.

t2t's required dependencies are what training, generation and evaluation need; a feature that needs
more (plots, TensorBoard files, Parquet, Hugging Face datasets, the server) imports it through
`require`, so a missing package is one line naming the extra, not an ImportError traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from t2t.errors import T2TError


class MissingExtra(T2TError, ImportError):
    """A feature's optional package is not installed."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import `module` for `feature`, or raise MissingExtra naming `pip install 't2t[extra]'`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise MissingExtra(
            f"{feature} needs the {package} package, which is not installed: pip install 't2t[{extra}]'"
        ) from None
