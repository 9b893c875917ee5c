"""POST /v1/completions and /v1/chat/completions: check the body, queue one job, answer or stream.

The handlers only translate: the body becomes a job (`t2t.serve.options`), the scheduler decodes it
among the others, and the events that come back become OpenAI's response or its stream of chunks
(`t2t.serve.responses`). Chat differs only in how the prompt is made (the model's chat template) and
in the shape of the answer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from t2t.serve.channel import CLIENT_CLOSED, Channel, ClientGone
from t2t.serve.chat import no_template_reason, render
from t2t.serve.errors import APIError, bad_request
from t2t.serve.jobs import Done, Emit, Failed, Finished, GenerateJob, Piece
from t2t.serve.options import (
    DEFAULT_MAX_TOKENS,
    check_model_name,
    encode,
    generate_job,
    max_tokens_for,
    prompt_rows,
    refuse_unsupported,
)
from t2t.serve.responses import DONE_LINE, Envelope, sse
from t2t.serve.schema import ChatCompletionRequest, CompletionRequest
from t2t.serve.state import note_tokens, request_id, served_model, server

router = APIRouter()
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request) -> Response:
    served = served_model(request)
    settings = server(request).settings
    check_model_name(served, body.model)
    refuse_unsupported(body.model_dump(exclude_none=True))
    n = 1 if body.n is None else body.n
    if body.best_of is not None and body.best_of != n:
        raise bad_request(
            f"best_of={body.best_of} is not supported (only best_of = n); use num_beams", "best_of"
        )
    max_tokens = max_tokens_for(served, body.max_tokens, DEFAULT_MAX_TOKENS)
    rows = prompt_rows(body.prompt)
    prompts = await run_in_threadpool(encode, served, rows, max_tokens, "prompt")
    prefixes = None
    if body.echo:  # the prompt's text before each of its answers
        texts = [r if isinstance(r, str) else served.tokenizer.decode(r) for r in rows]
        prefixes = [text for text in texts for _ in range(n)]

    def make(emit: Emit) -> GenerateJob:
        return generate_job(request_id(request, "cmpl"), emit, served, settings, body, prompts, max_tokens)

    envelope = Envelope(request_id(request, "cmpl"), int(time.time()), served.name, chat=False)
    return await _answer(request, make, envelope, bool(body.stream), _include_usage(body), prefixes)


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    served = served_model(request)
    settings = server(request).settings
    check_model_name(served, body.model)
    reason = no_template_reason(served)
    if reason is not None:
        raise bad_request(reason, "model")
    refuse_unsupported(body.model_dump(exclude_none=True))
    text = render(served, body.messages)
    ids = await run_in_threadpool(served.tokenizer.encode, text, False)
    requested = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    param = "max_completion_tokens" if body.max_completion_tokens is not None else "max_tokens"
    if requested is None:
        room = served.max_positions - len(ids)
        if room < 1:
            raise bad_request(
                f"the messages take {len(ids)} tokens, the whole context of this model "
                f"({served.max_positions}); shorten them",
                "messages",
            )
        max_tokens = room
    else:
        max_tokens = max_tokens_for(served, requested, None, param)
    prompts = encode(served, [ids], max_tokens, "messages")

    def make(emit: Emit) -> GenerateJob:
        return generate_job(
            request_id(request, "chatcmpl"), emit, served, settings, body, prompts, max_tokens
        )

    envelope = Envelope(request_id(request, "chatcmpl"), int(time.time()), served.name, chat=True)
    return await _answer(request, make, envelope, bool(body.stream), _include_usage(body), None)


def _include_usage(body: CompletionRequest | ChatCompletionRequest) -> bool:
    return body.stream_options is not None and body.stream_options.include_usage


async def _answer(
    request: Request,
    make: Callable[[Emit], GenerateJob],
    envelope: Envelope,
    stream: bool,
    include_usage: bool,
    prefixes: list[str] | None,
) -> Response:
    channel = Channel()
    job = make(channel.emit)
    server(request).engine.submit(job)
    if stream:
        chunks = _chunks(request, channel, job, envelope, include_usage, prefixes)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=STREAM_HEADERS)
    try:
        events = await channel.collect(request, job)
    except ClientGone:
        request.state.cancelled = True
        return Response(status_code=CLIENT_CLOSED)
    choices: dict[int, dict[str, Any]] = {}
    for event in events:
        if isinstance(event, Failed):
            raise event.error
        if isinstance(event, Finished):
            text = (prefixes[event.index] if prefixes else "") + event.text
            choices[event.index] = envelope.choice(event.index, text, event.reason)
        if isinstance(event, Done):
            _finished(request, job, event)
            body = envelope.body(
                [choices[i] for i in sorted(choices)], event.prompt_tokens, event.completion_tokens
            )
            return JSONResponse(body)
    raise APIError(500, "the generation ended without an answer")


def _finished(request: Request, job: GenerateJob, done: Done) -> None:
    note_tokens(request, done.prompt_tokens, done.completion_tokens)
    if job.first_token_at is not None:
        server(request).metrics.first_token.observe(job.first_token_at - job.arrived)


async def _chunks(
    request: Request,
    channel: Channel,
    job: GenerateJob,
    envelope: Envelope,
    include_usage: bool,
    prefixes: list[str] | None,
) -> AsyncIterator[str]:
    """The server-sent events of a streamed answer; leaving early (the client went) cancels the job."""
    completed = False
    try:
        for index in range(job.rows):
            if envelope.chat:
                yield envelope.chunk(index, "", role=True)
            elif prefixes:
                yield envelope.chunk(index, prefixes[index])
        async for event in channel.events():
            if isinstance(event, Piece):
                yield envelope.chunk(event.index, event.text)
            elif isinstance(event, Finished):
                yield envelope.chunk(event.index, None, event.reason)
            elif isinstance(event, Done):
                _finished(request, job, event)
                if include_usage:
                    yield envelope.usage_chunk(event.prompt_tokens, event.completion_tokens)
            elif isinstance(event, Failed):
                request.state.stream_error = event.error.status
                yield sse(event.error.body())
        completed = True
        yield DONE_LINE
    finally:
        request.state.cancelled = not completed
        job.cancel()


__all__ = ["router"]
