"""Errors as OpenAI's API writes them: a status code and `{"error": {"message", "type", "param", "code"}}`.

Every failure of a request becomes one of these (the exception handlers of `t2t.serve.app` map FastAPI's
and t2t's own exceptions here), so clients written for OpenAI, its Python client first, read them as
they read OpenAI's, and the server itself never sees a traceback for a client's mistake.
"""

from __future__ import annotations

from typing import Any

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
}


class APIError(Exception):
    """A request that fails with `status`; `param` names the request field at fault, if one is."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error_type = ERROR_TYPES.get(
            self.status, "invalid_request_error" if self.status < 500 else "server_error"
        )
        return {
            "error": {"message": self.message, "type": error_type, "param": self.param, "code": self.code}
        }


def bad_request(message: str, param: str | None = None) -> APIError:
    return APIError(400, message, param=param)


__all__ = ["APIError", "bad_request"]
