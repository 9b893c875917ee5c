"""Bad input never hurts the server: each malformed or impossible request gets its status code and an
OpenAI error body, and the next request is served normally; a client that leaves mid-stream frees its
place; a full queue answers 429 with Retry-After; a set API key is enforced (401)."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from test_serve_helpers import live_server, save_tiny_checkpoint, slow_down

GOOD = {"prompt": "translate English to German: house", "max_tokens": 4, "temperature": 0}
LONG = "the quick brown fox jumps over a lazy dog " * 200  # far beyond the tiny T5's 512 positions

BAD_REQUESTS = {  # id -> (raw body or a dict, the field the error names or None)
    "malformed json": (b'{"prompt": "x", ', None),
    "not an object": (b"[1, 2]", None),
    "empty body": (b"", None),
    "unknown field": ({**GOOD, "frobnicate": 1}, "frobnicate"),
    "missing prompt": ({"max_tokens": 4}, "prompt"),
    "max_tokens as text": ({**GOOD, "max_tokens": "4"}, "max_tokens"),
    "n as bool": ({**GOOD, "n": True}, "n"),
    "temperature as text": ({**GOOD, "temperature": "hot"}, "temperature"),
    "max_tokens zero": ({**GOOD, "max_tokens": 0}, "max_tokens"),
    "max_tokens negative": ({**GOOD, "max_tokens": -3}, "max_tokens"),
    "max_tokens beyond the model": ({**GOOD, "max_tokens": 100_000}, "max_tokens"),
    "empty prompt": ({**GOOD, "prompt": ""}, "prompt"),
    "blank prompt": ({**GOOD, "prompt": "   "}, "prompt"),
    "empty prompt list": ({**GOOD, "prompt": []}, "prompt"),
    "prompt too long": ({**GOOD, "prompt": LONG}, "prompt"),
    "token id outside the vocabulary": ({**GOOD, "prompt": [5, 10**6]}, "prompt"),
    "n zero": ({**GOOD, "n": 0}, "n"),
    "n too large": ({**GOOD, "n": 1000}, "n"),
    "n > 1 greedy": ({**GOOD, "n": 2}, "n"),
    "num_beams zero": ({**GOOD, "num_beams": 0}, "num_beams"),
    "num_beams too large": ({**GOOD, "num_beams": 99}, "num_beams"),
    "n above num_beams": ({**GOOD, "num_beams": 2, "n": 3}, "n"),
    "temperature too high": ({**GOOD, "temperature": 5}, "temperature"),
    "top_p zero": ({**GOOD, "top_p": 0}, "top_p"),
    "five stop sequences": ({**GOOD, "stop": list("abcde")}, "stop"),
    "empty stop sequence": ({**GOOD, "stop": [""]}, "stop"),
    "logprobs": ({**GOOD, "logprobs": 3}, "logprobs"),
    "presence_penalty": ({**GOOD, "presence_penalty": 0.5}, "presence_penalty"),
    "logit_bias": ({**GOOD, "logit_bias": {"5": 10}}, "logit_bias"),
    "best_of": ({**GOOD, "best_of": 3}, "best_of"),
    "length_penalty_style": ({**GOOD, "length_penalty_style": "mine"}, "length_penalty_style"),
    "min_tokens above max_tokens": ({**GOOD, "min_tokens": 9}, "min_tokens"),
    "repetition_penalty zero": ({**GOOD, "repetition_penalty": 0}, None),
    "nan temperature": (b'{"prompt": "x", "temperature": NaN}', None),
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("serve-errors") / "t5", "encoder-decoder")


@pytest.fixture(scope="module")
def server(model_dir):
    with live_server(model_dir) as running:
        yield running


def post(server, path: str, body, **kwargs) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{server.url}{path}",
        content=content,
        headers={"content-type": "application/json"},
        timeout=60,
        **kwargs,
    )


def assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_completion_request_is_400_and_the_next_one_is_served(server, case):
    body, param = BAD_REQUESTS[case]
    error = assert_openai_error(post(server, "/v1/completions", body), 400, param)
    assert error["type"] == "invalid_request_error"
    good = post(server, "/v1/completions", GOOD)
    assert good.status_code == 200 and good.json()["choices"][0]["finish_reason"] in ("stop", "length")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "x", "candidates": []}, "candidates"),
        ({"prompt": "x", "candidates": ["a", ""]}, "candidates"),
        ({"prompt": ["x", "y"], "candidates": [["a"]]}, "candidates"),
        ({"prompt": "", "candidates": ["a"]}, "prompt"),
        ({"prompt": "x", "candidates": ["a"], "reduction": "max"}, "reduction"),
        ({"prompt": "x"}, "candidates"),
    ],
)
def test_bad_score_request_is_400(server, body, param):
    assert_openai_error(post(server, "/v1/score", body), 400, param)


def test_bad_chat_requests_are_400(server):
    assert_openai_error(post(server, "/v1/chat/completions", {"messages": []}), 400, "messages")
    bad_role = {"messages": [{"role": "robot", "content": "hi"}]}
    assert_openai_error(post(server, "/v1/chat/completions", bad_role), 400)


def test_unknown_paths_methods_and_models(server):
    assert_openai_error(httpx.get(f"{server.url}/v1/nothing"), 404)
    assert_openai_error(httpx.get(f"{server.url}/v1/completions"), 405)
    error = assert_openai_error(post(server, "/v1/completions", {**GOOD, "model": "gpt-4"}), 404, "model")
    assert error["code"] == "model_not_found"


def test_client_leaving_mid_stream_stops_its_decoding(server):
    engine = server.engine
    hook = slow_down(engine.served.model, 0.01)
    try:
        body = {**GOOD, "max_tokens": 400, "ignore_eos": True, "stream": True}
        with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=60) as response:
            lines = response.iter_lines()
            received = [next(lines) for _ in range(6)]  # a few chunks arrived: it is decoding
            assert any(line.startswith("data: ") for line in received)
            assert engine.live_rows() == 1
        # the connection is closed here, long before 400 tokens at 10 ms a step
        deadline = time.monotonic() + 5
        while (engine.live_rows() or engine._cohorts) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.live_rows() == 0 and not engine._cohorts
    finally:
        hook.remove()
    assert post(server, "/v1/completions", GOOD).status_code == 200


def test_full_queue_is_429_with_retry_after(model_dir):
    with live_server(model_dir, max_batch_size=1, max_queue=1) as small:
        hook = slow_down(small.engine.served.model, 0.01)
        try:
            long_body = {**GOOD, "max_tokens": 300, "ignore_eos": True, "stream": True}
            with httpx.stream("POST", f"{small.url}/v1/completions", json=long_body, timeout=60) as running:
                lines = running.iter_lines()  # kept: a dropped iterator closes the stream
                next(lines)
                waiting = threading.Thread(target=post, args=(small, "/v1/completions", GOOD))
                waiting.start()
                deadline = time.monotonic() + 5
                while small.engine.queue_depth() < 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                refused = post(small, "/v1/completions", GOOD)
                error = assert_openai_error(refused, 429)
                assert refused.headers["retry-after"] == "1" and error["type"] == "rate_limit_error"
            waiting.join(30)
        finally:
            hook.remove()
        assert post(small, "/v1/completions", GOOD).status_code == 200
        metrics = httpx.get(f"{small.url}/metrics").text
        assert 't2t_request_errors_total{code="429"} 1.0' in metrics


def test_api_key_is_required_when_set(model_dir):
    with live_server(model_dir, api_key="s3cret") as keyed:
        url = f"{keyed.url}/v1/completions"
        error = assert_openai_error(httpx.post(url, json=GOOD), 401)
        assert error["code"] == "invalid_api_key"
        assert_openai_error(httpx.post(url, json=GOOD, headers={"Authorization": "Bearer wrong"}), 401)
        assert_openai_error(httpx.post(url, content=b"{oops", headers={"Authorization": "Bearer nope"}), 401)
        assert httpx.post(url, json=GOOD, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(f"{keyed.url}/health").status_code == 200  # probes need no key
        assert httpx.get(f"{keyed.url}/").status_code == 200  # nor the page (it asks for the key)


def test_a_huge_body_is_refused_with_413(server):
    huge = b'{"prompt": "' + b"a" * (5 * 2**20) + b'"}'
    assert_openai_error(post(server, "/v1/completions", huge), 413)
    assert post(server, "/v1/completions", GOOD).status_code == 200
