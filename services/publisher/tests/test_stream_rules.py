"""The live feed's pure rules: stream positions, when a resume resets, and the stream capacity."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_publisher.api.errors import api_error
from ksbb_publisher.domain.errors import InvalidStreamPosition, StreamCapacityReached, TooManyStreams
from ksbb_publisher.domain.stream import StreamCapacity, must_reset, parse_position

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "position"),
    [("0", 0), (" 42 ", 42), ("9" * 18, int("9" * 18)), ("2026-01-05T08:00:00.000000Z~evt_1", None)],
)
def test_positions_we_hand_out_are_read_back(value: str, position: int | None) -> None:
    assert parse_position(value, "after") == (position if position is not None else value.strip())


@pytest.mark.parametrize("value", ["²", "٣", "1²", "9" * 19, "1" * 5000, "-1", "+1", "abc", "1.5", "a~" + "b" * 300])
def test_anything_else_is_refused_naming_where_it_came_from(value: str) -> None:
    with pytest.raises(InvalidStreamPosition) as refused:
        parse_position(value, "Last-Event-ID")
    assert refused.value.field == "Last-Event-ID"
    error = api_error(refused.value)
    assert (error.status, error.body.code, error.body.field) == (422, "invalid_stream_position", "Last-Event-ID")


@given(
    resumed=st.integers(min_value=0, max_value=10**18),
    latest=st.integers(min_value=0, max_value=10**18),
    max_replay=st.integers(min_value=0, max_value=100_000),
)
def test_a_resume_replays_at_most_the_limit_and_never_from_the_future(
    resumed: int, latest: int, max_replay: int
) -> None:
    if must_reset(resumed, latest, max_replay):
        assert resumed > latest or latest - resumed > max_replay
    else:
        assert 0 <= latest - resumed <= max_replay


def test_the_capacity_counts_per_client_and_in_total_and_frees_places() -> None:
    capacity = StreamCapacity(per_client=2, total=3, retry_after_seconds=5)
    capacity.admit("a")
    capacity.admit("a")
    with pytest.raises(TooManyStreams) as per_client:
        capacity.admit("a")
    capacity.admit("b")
    with pytest.raises(StreamCapacityReached) as total:
        capacity.admit("c")
    assert capacity.count == 3
    for refusal, status, code in (
        (per_client.value, 429, "too_many_streams"),
        (total.value, 503, "stream_capacity_reached"),
    ):
        error = api_error(refusal)
        assert (error.status, error.body.code, error.headers) == (status, code, {"Retry-After": "5"})
    capacity.release("a")
    capacity.admit("c")
    capacity.release("b")
    capacity.release("c")
    capacity.release("a")
    assert capacity.count == 0 and not capacity.open
