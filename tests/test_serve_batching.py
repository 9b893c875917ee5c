"""The scheduler without HTTP: requests decoded together give the tokens a lone `generate` gives (greedy
and beam search, T5 and GPT-2, prompts of different lengths and limits), a short request finishes while a
long one is still decoding, a cancelled request stops its batch, and a full queue refuses with 429."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from t2t.generation.search import generate
from t2t.serve.answers import Answer
from t2t.serve.engine import Engine
from t2t.serve.errors import APIError
from t2t.serve.jobs import Done, Failed, Finished, GenerateJob, Piece
from t2t.serve.loader import ServedModel, load_served_model
from t2t.serve.options import encode, generate_job, max_tokens_for, prompt_rows
from t2t.serve.schema import CompletionRequest
from t2t.serve.settings import ServeSettings
from test_serve_helpers import save_tiny_checkpoint, slow_down  # skips without the serve extra

PROMPTS = [
    "translate English to German: the house",
    "summarize: a lazy dog and a quick fox meet",
    "question: who? context: text",
    "classify: happy",
    "the quick brown fox jumps over a lazy dog while data flows",
]


class Collector:
    """A job's `emit`: keeps the events, and says when the job is over."""

    def __init__(self) -> None:
        self.events: list = []
        self.over = threading.Event()
        self.done_at: float | None = None

    def __call__(self, events: list) -> None:
        self.events.extend(events)
        if any(isinstance(e, (Done, Failed)) for e in events):
            self.done_at = time.perf_counter()
            self.over.set()

    def answers(self) -> dict[int, list[int]]:
        assert self.over.wait(60), "the job did not finish"
        failed = [e for e in self.events if isinstance(e, Failed)]
        assert not failed, failed[0].error.message
        return {e.index: e.ids for e in self.events if isinstance(e, Finished)}


_MODELS: dict[str, ServedModel] = {}


def _model(arch: str, tmp_path_factory) -> ServedModel:
    if arch not in _MODELS:
        directory = save_tiny_checkpoint(tmp_path_factory.mktemp("serve-batching") / arch, arch)
        _MODELS[arch] = load_served_model(ServeSettings(model=str(directory)))
    return _MODELS[arch]


@pytest.fixture(params=["encoder-decoder", "decoder"])
def served(request, tmp_path_factory) -> ServedModel:
    return _model(request.param, tmp_path_factory)


@pytest.fixture
def t5(tmp_path_factory) -> ServedModel:
    """The T5: relative positions let it decode hundreds of tokens (the tiny GPT-2 has 64 positions)."""
    return _model("encoder-decoder", tmp_path_factory)


def make_job(
    served: ServedModel, settings: ServeSettings, prompt: str, **fields
) -> tuple[GenerateJob, Collector]:
    body = CompletionRequest(prompt=prompt, **fields)
    max_tokens = max_tokens_for(served, body.max_tokens, 16)
    prompts = encode(served, prompt_rows(body.prompt), max_tokens, "prompt")
    collector = Collector()
    job = generate_job(uuid.uuid4().hex, collector, served, settings, body, prompts, max_tokens)
    return job, collector


def lone_answers(served: ServedModel, job: GenerateJob) -> dict[int, list[int]]:
    """What one `generate` call on this prompt alone gives, cut at each row's end-of-sequence token."""
    sequences = generate(served.model, [job.prompts[0]], None, job.config)
    start = 1 if served.encoder_decoder else len(job.prompts[0])
    answers = {}
    for i, row in enumerate(sequences[:, start:].tolist()):
        ends = [k for k, token in enumerate(row) if token in job.config.eos_ids]
        answers[i] = row[: ends[0]] if ends else row
    return answers


def run_together(served: ServedModel, settings: ServeSettings, specs: list[tuple[str, dict]]):
    """Submit the jobs to an idle engine at once (a long batch_wait gathers them) and wait for all."""
    engine = Engine(settings, load=lambda _: served)
    engine.start()
    assert engine.wait_loaded(30)
    jobs = [make_job(served, settings, prompt, **fields) for prompt, fields in specs]
    for job, _ in jobs:
        engine.submit(job)
    results = [collector.answers() for _, collector in jobs]
    engine.stop(10)
    return engine, jobs, results


def _batch_steps_of_one(engine: Engine) -> float:
    return engine.metrics.registry.get_sample_value("t2t_batch_size_bucket", {"le": "1.0"}) or 0.0


def test_greedy_answers_decoded_together_equal_lone_generate(served):
    settings = ServeSettings(model="-", batch_wait_ms=300)
    specs = [(p, {"max_tokens": 4 + 3 * i, "temperature": 0}) for i, p in enumerate(PROMPTS)]
    engine, jobs, results = run_together(served, settings, specs)
    assert _batch_steps_of_one(engine) == 0  # every decoding step had all five prompts in it
    for (job, _), answers in zip(jobs, results):
        assert answers == lone_answers(served, job)
        assert all(len(ids) <= job.max_tokens for ids in answers.values())


def test_beam_answers_decoded_together_equal_lone_generate(served):
    settings = ServeSettings(model="-", batch_wait_ms=300)
    fields = {"max_tokens": 6, "num_beams": 3, "n": 2, "length_penalty": 0.6, "length_penalty_style": "gnmt"}
    engine, jobs, results = run_together(served, settings, [(p, fields) for p in PROMPTS[:4]])
    assert _batch_steps_of_one(engine) == 0
    for (job, _), answers in zip(jobs, results):
        assert answers == lone_answers(served, job)
        assert len(answers) == 2


def test_greedy_with_penalties_decoded_together_equals_lone_generate(served):
    settings = ServeSettings(model="-", batch_wait_ms=300)
    fields = {
        "max_tokens": 8,
        "temperature": 0,
        "repetition_penalty": 1.3,
        "no_repeat_ngram_size": 2,
        "min_tokens": 2,
    }
    _, jobs, results = run_together(served, settings, [(p, fields) for p in PROMPTS[:3]])
    for (job, _), answers in zip(jobs, results):
        assert answers == lone_answers(served, job)


def test_seeded_sampling_equals_lone_generate_with_the_seed(served):
    settings = ServeSettings(model="-", batch_wait_ms=300)
    fields = {"max_tokens": 6, "temperature": 0.8, "top_p": 0.9, "seed": 7, "n": 2}
    _, jobs, results = run_together(served, settings, [(p, fields) for p in PROMPTS[:2]])
    for (job, _), answers in zip(jobs, results):
        assert answers == lone_answers(served, job)


def test_a_short_request_finishes_while_a_long_one_decodes(t5):
    served = t5
    settings = ServeSettings(model="-", batch_wait_ms=0)
    engine = Engine(settings, load=lambda _: served)
    engine.start()
    assert engine.wait_loaded(30)
    hook = slow_down(served.model, 0.01)
    try:
        long_job, long_out = make_job(
            served, settings, PROMPTS[1], max_tokens=200, temperature=0, ignore_eos=True, stream=True
        )
        engine.submit(long_job)
        deadline = time.monotonic() + 10
        while not any(isinstance(e, Piece) for e in long_out.events) and time.monotonic() < deadline:
            time.sleep(0.005)
        short_job, short_out = make_job(
            served, settings, PROMPTS[0], max_tokens=3, temperature=0, ignore_eos=True
        )
        engine.submit(short_job)
        assert short_out.over.wait(10)
        assert not long_out.over.is_set()  # the long answer is still being decoded
        assert len(short_out.answers()[0]) == 3
        assert long_out.over.wait(30)
        assert len(long_out.answers()[0]) == 200
    finally:
        hook.remove()
        engine.stop(10)


def test_a_cancelled_request_stops_its_batch_and_frees_its_rows(t5):
    served = t5
    settings = ServeSettings(model="-", batch_wait_ms=0)
    engine = Engine(settings, load=lambda _: served)
    engine.start()
    assert engine.wait_loaded(30)
    hook = slow_down(served.model, 0.01)
    try:
        job, out = make_job(
            served, settings, PROMPTS[0], max_tokens=300, temperature=0, ignore_eos=True, stream=True
        )
        engine.submit(job)
        deadline = time.monotonic() + 10
        while sum(isinstance(e, Piece) for e in out.events) < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert engine.live_rows() == 1
        job.cancel()
        deadline = time.monotonic() + 5
        while engine._cohorts and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not engine._cohorts and engine.live_rows() == 0
        pieces = sum(isinstance(e, Piece) for e in out.events)
        assert pieces < 100 and not out.over.is_set()  # stopped long before its 300 tokens
        follow, follow_out = make_job(served, settings, PROMPTS[3], max_tokens=4, temperature=0)
        engine.submit(follow)
        assert follow_out.over.wait(10) and follow_out.answers()
    finally:
        hook.remove()
        engine.stop(10)


def test_a_full_queue_refuses_with_429_and_retry_after(t5):
    served = t5
    settings = ServeSettings(model="-", batch_wait_ms=0, max_batch_size=1, max_queue=1)
    engine = Engine(settings, load=lambda _: served)
    engine.start()
    assert engine.wait_loaded(30)
    hook = slow_down(served.model, 0.01)
    try:
        running, running_out = make_job(
            served, settings, PROMPTS[0], max_tokens=100, temperature=0, ignore_eos=True, stream=True
        )
        engine.submit(running)
        deadline = time.monotonic() + 10
        while not running_out.events and time.monotonic() < deadline:
            time.sleep(0.005)
        waiting, waiting_out = make_job(served, settings, PROMPTS[1], max_tokens=2, temperature=0)
        engine.submit(waiting)  # no room in the batch: it waits
        refused, _ = make_job(served, settings, PROMPTS[2], max_tokens=2, temperature=0)
        with pytest.raises(APIError) as caught:
            engine.submit(refused)
        assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "1"
        running.cancel()
        assert waiting_out.over.wait(10) and waiting_out.answers()
        assert engine.queue_depth() == 0
    finally:
        hook.remove()
        engine.stop(10)


def test_a_bug_while_decoding_answers_500_and_the_scheduler_goes_on(t5, monkeypatch):
    served = t5
    settings = ServeSettings(model="-", batch_wait_ms=0)
    real_push = Answer.push
    calls = {"n": 0}

    def push_failing_once(self, token):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug")
        return real_push(self, token)

    monkeypatch.setattr(Answer, "push", push_failing_once)
    engine = Engine(settings, load=lambda _: served)
    engine.start()
    assert engine.wait_loaded(30)
    try:
        broken, broken_out = make_job(served, settings, PROMPTS[0], max_tokens=4, temperature=0)
        engine.submit(broken)
        assert broken_out.over.wait(10)
        (failed,) = [e for e in broken_out.events if isinstance(e, Failed)]
        assert failed.error.status == 500
        follow, follow_out = make_job(served, settings, PROMPTS[1], max_tokens=4, temperature=0)
        engine.submit(follow)
        assert follow_out.answers() == lone_answers(served, follow)
    finally:
        engine.stop(10)


@pytest.mark.parametrize(("mode", "together"), [("int8-weight-only", 3), ("int8-dynamic", 1)])
def test_a_quantized_model_serves_what_it_generates_alone(tmp_path_factory, mode, together):
    """--quantize: the served model is the int8 one, and its answers are the tokens a lone greedy generate
    of that model gives. int8-dynamic quantises each call's activations with one scale for the whole
    batch, so its answers can depend on what they are batched with (the test found it): only a lone
    request is compared there; int8-weight-only is compared batched."""
    from t2t.model.quantize import quantization_of

    directory = save_tiny_checkpoint(tmp_path_factory.mktemp("serve-int8") / "t5", "encoder-decoder")
    served = load_served_model(ServeSettings(model=str(directory), quantize=mode))
    assert quantization_of(served.model) == mode
    settings = ServeSettings(model="-", batch_wait_ms=300)
    specs = [(prompt, {"max_tokens": 8, "temperature": 0}) for prompt in PROMPTS[:together]]
    _, jobs, results = run_together(served, settings, specs)
    for (job, _), answers in zip(jobs, results, strict=True):
        assert answers == lone_answers(served, job)


def test_an_unknown_quantization_is_refused_in_the_settings():
    from t2t.errors import ConfigError

    with pytest.raises(ConfigError, match="int4"):
        ServeSettings(model="-", quantize="int4")
