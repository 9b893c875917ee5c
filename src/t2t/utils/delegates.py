"""Conveniences that a lower layer offers and a higher layer implements.

Users expect `model.generate(...)`, `Model.from_pretrained(...)` and `tokenizer.save_pretrained(...)` on
the objects themselves, as in transformers; but generation sits above the model, and loading and saving
above both. So the object's method calls `delegates.call(NAME, ...)`, and the module that does the work
registers itself under NAME when it is imported (`delegates.provide(NAME, function)`). The package
facades (`t2t`, `t2t.tokenizer`) import the providers, so by the time anyone holds a model or a
tokenizer they are registered; the model layer never imports the layers above it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_PROVIDERS: dict[str, Callable[..., Any]] = {}


def provide(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """Register `function` as the implementation of the convenience `name`; returns it unchanged."""
    _PROVIDERS[name] = function
    return function


def call(name: str, *args: Any, **kwargs: Any) -> Any:
    """Run the convenience `name` with the arguments given."""
    try:
        function = _PROVIDERS[name]
    except KeyError:
        raise RuntimeError(
            f"{name} is implemented by a t2t module that was not imported; `import t2t` registers it"
        ) from None
    return function(*args, **kwargs)
