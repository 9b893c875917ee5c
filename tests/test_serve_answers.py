"""One answer's text as tokens arrive (t2t.serve.answers): stop sequences are cut and their beginnings
held back, end-of-sequence and length end the answer, and the streamed pieces join to the final text."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed: pip install 't2t[serve]'")

from t2t.serve.answers import Answer

EOS = 0
PIECES = {1: "ab", 2: "c", 3: "d", 4: "hello world", 5: " ", 6: "x"}


class _Stream:
    def step(self, token_id: int) -> str:
        return PIECES.get(token_id, "")


class FakeTokenizer:
    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return "".join(PIECES.get(i, "") for i in ids)

    def decode_stream(self, skip_special_tokens: bool = True) -> _Stream:
        return _Stream()


def run(tokens: list[int], stops: list[str], max_tokens: int = 50) -> tuple[list[str], Answer]:
    answer = Answer(FakeTokenizer(), [EOS], max_tokens, stops)
    pieces = []
    for token in tokens:
        if answer.done:
            assert answer.push(token) == ""  # nothing more once the answer is over
            continue
        pieces.append(answer.push(token))
    if not answer.done:
        pieces.append(answer.finish())
    return pieces, answer


def test_plain_answer_streams_every_piece_and_ends_at_eos():
    pieces, answer = run([1, 2, 3, EOS, 6], [])
    assert pieces == ["ab", "c", "d", ""]
    assert answer.reason == "stop" and answer.final_text() == "abcd" and answer.ids == [1, 2, 3]


def test_length_limit_ends_with_length():
    pieces, answer = run([1, 2, 3, 6], [], max_tokens=2)
    assert "".join(pieces) == "abc" and answer.reason == "length" and answer.ids == [1, 2]


def test_a_stop_sequence_across_tokens_is_held_back_and_cut():
    pieces, answer = run([1, 2, 3, 6], ["cd"])
    assert pieces == ["ab", "", ""]  # "c" could begin "cd": held back, then cut with it
    assert answer.reason == "stop" and answer.final_text() == "ab"


def test_a_held_back_prefix_that_is_no_stop_is_released():
    pieces, answer = run([1, 2, 3, EOS], ["cx"])
    assert pieces == ["ab", "", "cd", ""] and answer.final_text() == "abcd"


def test_a_stop_inside_one_token_cuts_it():
    pieces, answer = run([4, 6], ["lo w"])
    assert pieces == ["hel"] and answer.final_text() == "hel" and answer.reason == "stop"


def test_the_earliest_of_several_stops_wins():
    pieces, answer = run([4], ["world", "o"])
    assert "".join(pieces) == "hell" == answer.final_text()


def test_pieces_always_join_to_the_final_text():
    for stops in ([], ["d"], ["b", "x"], ["ab"], ["zz"]):
        pieces, answer = run([1, 5, 2, 3, 6, 4], stops)
        assert "".join(pieces) == answer.final_text(), stops
