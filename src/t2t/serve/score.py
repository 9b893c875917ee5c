"""POST /v1/score: rank candidate answers by their log-likelihood (t2t's `rank_candidates`).

This is how T5 classifies: rather than generate a label, score each label given the input and take the
best. One list of candidates serves every prompt, or each prompt brings its own:

    {"prompt": "classify sentiment: What a joy!", "candidates": ["positive", "negative"]}
    -> {"object": "list", "data": [{"index": 0, "scores": [-0.02, -4.1], "best": "positive", ...}], ...}
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from t2t.serve.channel import CLIENT_CLOSED, Channel, ClientGone
from t2t.serve.errors import APIError, bad_request
from t2t.serve.jobs import Done, Failed, Scored, ScoreJob
from t2t.serve.loader import ServedModel
from t2t.serve.options import check_model_name, encode
from t2t.serve.responses import usage
from t2t.serve.schema import ScoreRequest
from t2t.serve.state import note_tokens, request_id, served_model, server

router = APIRouter()
MAX_PROMPTS = 64
MAX_CANDIDATES = 64


def _candidate_lists(body: ScoreRequest, prompts: int) -> list[list[str]]:
    given = body.candidates
    if not given:
        raise bad_request("candidates is empty; give at least one candidate answer", "candidates")
    lists = [list(given)] * prompts if isinstance(given[0], str) else [list(c) for c in given]  # type: ignore[arg-type]
    if len(lists) != prompts:
        raise bad_request(
            f"candidates has {len(lists)} lists for {prompts} prompts; give one per prompt", "candidates"
        )
    for i, options in enumerate(lists):
        if not options:
            raise bad_request(f"candidates[{i}] is empty; give at least one candidate answer", "candidates")
        if len(options) > MAX_CANDIDATES:
            raise bad_request(
                f"candidates[{i}] has {len(options)} answers; at most {MAX_CANDIDATES}", "candidates"
            )
        if any(not isinstance(c, str) or not c.strip() for c in options):
            raise bad_request(
                f"candidates[{i}] holds an empty answer; every candidate needs text", "candidates"
            )
    return lists


def _check_lengths(served: ServedModel, prompts: list[list[int]], lists: list[list[str]]) -> None:
    """Candidates must fit the model's positions after their prompt (decoder-only) or in the decoder."""
    encoder_decoder = served.encoder_decoder
    for i, (prompt, options) in enumerate(zip(prompts, lists)):
        room = served.max_positions - (0 if encoder_decoder else len(prompt))
        for c, option in enumerate(options):
            length = len(served.tokenizer.encode(option, add_special_tokens=encoder_decoder))
            if length > room:
                raise bad_request(
                    f"candidates[{i}][{c}] has {length} tokens; only {room} fit after its prompt in this model",
                    "candidates",
                )


def _prepare(served: ServedModel, body: ScoreRequest) -> tuple[list[str], list[list[int]], list[list[str]]]:
    texts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
    if not texts:
        raise bad_request("prompt is an empty list; give a string or a list of strings", "prompt")
    if len(texts) > MAX_PROMPTS:
        raise bad_request(f"prompt has {len(texts)} prompts; at most {MAX_PROMPTS}", "prompt")
    lists = _candidate_lists(body, len(texts))
    prompts = encode(served, texts, 1, "prompt")
    _check_lengths(served, prompts, lists)
    return texts, prompts, lists


@router.post("/v1/score")
async def score(body: ScoreRequest, request: Request) -> Response:
    served = served_model(request)
    check_model_name(served, body.model)
    texts, prompts, lists = await run_in_threadpool(_prepare, served, body)
    channel = Channel()
    job = ScoreJob(
        id=request_id(request, "score"),
        emit=channel.emit,
        prompts=prompts,
        texts=texts,
        candidates=lists,
        reduction=body.reduction,
    )
    server(request).engine.submit(job)
    try:
        events = await channel.collect(request, job)
    except ClientGone:
        request.state.cancelled = True
        return Response(status_code=CLIENT_CLOSED)
    scores = next((e.scores for e in events if isinstance(e, Scored)), None)
    failed = next((e for e in events if isinstance(e, Failed)), None)
    if failed is not None:
        raise failed.error
    if scores is None or not any(isinstance(e, Done) for e in events):
        raise APIError(500, "scoring ended without scores")
    note_tokens(request, job.prompt_tokens, 0)
    data = []
    for i, (options, row) in enumerate(zip(lists, scores)):
        best = max(range(len(row)), key=row.__getitem__)
        data.append(
            {"index": i, "candidates": options, "scores": row, "best": options[best], "best_index": best}
        )
    return JSONResponse(
        {
            "id": job.id,
            "object": "list",
            "created": int(time.time()),
            "model": served.name,
            "reduction": body.reduction,
            "data": data,
            "usage": usage(job.prompt_tokens, 0),
        }
    )


__all__ = ["router"]
