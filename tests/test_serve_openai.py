"""The official `openai` client against `t2t serve` (a real uvicorn server on a tiny T5 and a tiny GPT-2
with a chat template): completions and chat, streamed and not, give what t2t's own generation gives for
the same prompt and options; scoring, the model list, health and metrics."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest

from test_serve_helpers import CHAT_TEMPLATE, live_server, save_tiny_checkpoint, sse_events

openai = pytest.importorskip("openai", reason="the openai client (a dev dependency) is not installed")

from t2t.generation.pipeline import Pipeline  # noqa: E402
from t2t.generation.scoring import rank_candidates  # noqa: E402
from t2t.serve.chat import render  # noqa: E402
from t2t.serve.schema import ChatMessage  # noqa: E402

PROMPTS = ["translate English to German: the house", "classify: happy data", "summarize: a quick fox"]


@pytest.fixture(scope="module")
def t5(tmp_path_factory):
    directory = save_tiny_checkpoint(tmp_path_factory.mktemp("serve-openai") / "t5", "encoder-decoder")
    with live_server(directory, served_model_name="tiny-t5") as server:
        yield server


@pytest.fixture(scope="module")
def gpt(tmp_path_factory):
    directory = save_tiny_checkpoint(
        tmp_path_factory.mktemp("serve-openai") / "gpt", "decoder", chat_template=CHAT_TEMPLATE
    )
    with live_server(directory) as server:
        yield server


def client_for(server, api_key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=api_key, max_retries=0, timeout=60)


def pipeline(server) -> Pipeline:
    served = server.engine.served
    return Pipeline(served.model, served.tokenizer, eos_token_id=served.eos_ids)


def test_completion_equals_the_pipeline_answer(t5):
    client = client_for(t5)
    for prompt in PROMPTS:
        out = client.completions.create(model="tiny-t5", prompt=prompt, max_tokens=8, temperature=0)
        assert out.object == "text_completion" and out.model == "tiny-t5"
        assert out.choices[0].text == pipeline(t5)(prompt, max_new_tokens=8)
        assert out.choices[0].finish_reason in ("stop", "length")
        assert out.usage.prompt_tokens == len(t5.engine.served.tokenizer.encode(prompt))
        assert out.usage.completion_tokens <= 8


def test_streamed_completion_joins_to_the_same_text(t5):
    client = client_for(t5)
    prompt = PROMPTS[0]
    whole = client.completions.create(model="tiny-t5", prompt=prompt, max_tokens=12, temperature=0)
    stream = client.completions.create(
        model="tiny-t5",
        prompt=prompt,
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_raw_stream_is_openai_server_sent_events(t5):
    body = {"prompt": PROMPTS[1], "max_tokens": 5, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{t5.url}/v1/completions", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    assert all(e["object"] == "text_completion" for e in events[:-1])
    assert events[-2]["choices"][0]["finish_reason"] in ("stop", "length")


def test_several_prompts_and_beam_search_with_n(t5):
    client = client_for(t5)
    out = client.completions.create(
        model="tiny-t5",
        prompt=PROMPTS,
        max_tokens=6,
        temperature=0,
        n=2,
        extra_body={"num_beams": 3, "length_penalty": 0.6, "length_penalty_style": "gnmt"},
    )
    assert [c.index for c in out.choices] == list(range(6))
    expected = pipeline(t5)(
        PROMPTS,
        max_new_tokens=6,
        num_beams=3,
        num_return_sequences=2,
        length_penalty=0.6,
        length_penalty_style="gnmt",
    )
    assert [c.text for c in out.choices] == [text for pair in expected for text in pair]


def test_concurrent_requests_are_batched_and_answer_as_alone(t5):
    """Eight clients at once: the answers are the lone pipeline's, and some decoding steps held several."""
    client = client_for(t5)
    prompts = [f"{p} {i}" for i in range(3) for p in PROMPTS][:8]

    def ask(prompt: str) -> str:
        return (
            client.completions.create(model="tiny-t5", prompt=prompt, max_tokens=10, temperature=0)
            .choices[0]
            .text
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, prompts))
    assert answers == [pipeline(t5)(p, max_new_tokens=10) for p in prompts]
    metrics = httpx.get(f"{t5.url}/metrics").text
    one_row = float(
        next(
            line for line in metrics.splitlines() if line.startswith('t2t_batch_size_bucket{le="1.0"}')
        ).split()[1]
    )
    steps = float(
        next(line for line in metrics.splitlines() if line.startswith("t2t_batch_size_count")).split()[1]
    )
    assert steps > one_row  # some steps decoded more than one row


def test_echo_and_stop_sequences(t5):
    client = client_for(t5)
    prompt = PROMPTS[0]
    plain = (
        client.completions.create(model="tiny-t5", prompt=prompt, max_tokens=12, temperature=0)
        .choices[0]
        .text
    )
    echoed = client.completions.create(
        model="tiny-t5", prompt=prompt, max_tokens=12, temperature=0, echo=True
    )
    assert echoed.choices[0].text == prompt + plain
    if len(plain) >= 3:
        stop = plain[1:3]
        cut = client.completions.create(
            model="tiny-t5", prompt=prompt, max_tokens=12, temperature=0, stop=[stop]
        )
        assert cut.choices[0].text == plain[: plain.find(stop)]
        assert cut.choices[0].finish_reason == "stop"


def test_chat_completion_with_the_models_template(gpt):
    client = client_for(gpt)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "the quick fox"}]
    out = client.chat.completions.create(model="gpt", messages=messages, max_tokens=6, temperature=0)
    served = gpt.engine.served
    prompt = render(served, [ChatMessage(**m) for m in messages])
    assert prompt.endswith("assistant:")
    pipe = pipeline(gpt)
    ids = served.tokenizer.encode(prompt, add_special_tokens=False)
    expected = pipe.generate_batch([ids], pipe.config.replace(max_new_tokens=6))[0][0]
    assert out.object == "chat.completion"
    assert out.choices[0].message.role == "assistant"
    assert out.choices[0].message.content == expected
    stream = client.chat.completions.create(
        model="gpt", messages=messages, max_tokens=6, temperature=0, stream=True
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == out.choices[0].message.content


def test_chat_on_a_model_without_template_is_400(t5):
    with pytest.raises(openai.BadRequestError, match="chat format"):
        client_for(t5).chat.completions.create(model="tiny-t5", messages=[{"role": "user", "content": "hi"}])


def test_client_errors_map_to_openai_exceptions(t5):
    client = client_for(t5)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.completions.create(model="tiny-t5", prompt="x", max_tokens=0)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.completions.create(model="gpt-4", prompt="x")
    assert client.completions.create(model="tiny-t5", prompt="x", max_tokens=2).choices  # still serving


def test_score_ranks_candidates_as_rank_candidates(t5):
    served = t5.engine.served
    body = {"model": "tiny-t5", "prompt": PROMPTS[:2], "candidates": ["positive", "negative", "neutral"]}
    out = httpx.post(f"{t5.url}/v1/score", json=body, timeout=60).json()
    expected = rank_candidates(served.model, served.tokenizer, PROMPTS[:2], [body["candidates"]] * 2)
    for row, scores in zip(out["data"], expected):
        assert row["scores"] == pytest.approx(scores, abs=1e-4)
        assert row["best"] == body["candidates"][max(range(3), key=scores.__getitem__)]


def test_models_health_and_metrics(t5):
    models = client_for(t5).models.list()
    assert [m.id for m in models.data] == ["tiny-t5"]
    assert httpx.get(f"{t5.url}/health").json()["status"] == "ok"
    text = httpx.get(f"{t5.url}/metrics").text
    for name in (
        "t2t_requests_total",
        "t2t_request_errors_total",
        "t2t_prompt_tokens_total",
        "t2t_generated_tokens_total",
        "t2t_queue_depth",
        "t2t_batch_size_bucket",
        "t2t_request_latency_seconds_bucket",
        "t2t_time_to_first_token_seconds_bucket",
    ):
        assert name in text, name


def test_a_prompt_of_token_ids_answers_as_its_text(t5):
    client = client_for(t5)
    ids = t5.engine.served.tokenizer.encode(PROMPTS[2])
    by_text = client.completions.create(model="tiny-t5", prompt=PROMPTS[2], max_tokens=6, temperature=0)
    by_ids = client.completions.create(model="tiny-t5", prompt=[ids, ids], max_tokens=6, temperature=0)
    assert [c.text for c in by_ids.choices] == [by_text.choices[0].text] * 2
    assert by_ids.usage.prompt_tokens == 2 * len(ids)
