"""Chat messages to a prompt with the model's own chat template, as transformers' apply_chat_template does.

A chat template is Jinja code shipped with instruct checkpoints. It runs in Jinja's immutable sandbox
(transformers does the same), so a template can format text but not reach Python objects or files:
nothing t2t reads may execute code. Models without a template (T5, base GPT-2) have no chat format, and
/v1/chat/completions refuses them rather than guess one.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from t2t.serve.errors import bad_request
from t2t.serve.loader import ServedModel
from t2t.serve.schema import ChatMessage


class _TemplateRaised(Exception):
    """A template's own raise_exception('...') (e.g. 'roles must alternate user/assistant')."""


def _raise(message: str) -> None:
    raise _TemplateRaised(message)


@lru_cache(maxsize=4)
def _compiled(source: str) -> Any:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    return env.from_string(source)


def no_template_reason(served: ServedModel) -> str | None:
    """Why this model cannot chat, or None when it can."""
    if served.encoder_decoder:
        return (
            f"the model {served.name!r} is an encoder-decoder (T5-like) model without a chat format; "
            "use /v1/completions with a task prefix"
        )
    if served.chat_template is None:
        return (
            f"the model {served.name!r} has no chat template (tokenizer_config.json's chat_template or "
            "chat_template.jinja); use /v1/completions"
        )
    return None


def render(served: ServedModel, messages: list[ChatMessage]) -> str:
    """The prompt text for `messages`, ending where the assistant's answer begins."""
    assert served.chat_template is not None
    rows = [{"role": m.role, "content": m.text(), **({"name": m.name} if m.name else {})} for m in messages]
    try:
        return _compiled(served.chat_template).render(
            messages=rows, add_generation_prompt=True, **served.special_tokens
        )
    except _TemplateRaised as err:
        raise bad_request(f"the model's chat template refused the messages: {err}", "messages") from None
    except TemplateError as err:
        raise bad_request(f"the model's chat template failed on the messages: {err}", "messages") from None


__all__ = ["no_template_reason", "render"]
