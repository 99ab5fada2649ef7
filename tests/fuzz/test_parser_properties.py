"""Property-based tests of the parsers that read what clients send: page cursors, live-feed positions
(Last-Event-ID / `after`) and area codes. Whatever the text, each either parses or refuses with its own clear
error (422 with the field) — never another exception, which would be a 500."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from ksbb_contracts import limits
from ksbb_contracts.areas import areas
from ksbb_kit.errors import ApiError
from ksbb_kit.http import decode_cursor, encode_cursor
from ksbb_publisher.domain.areas import checked_area_code, is_area_of_level
from ksbb_publisher.domain.errors import InvalidStreamPosition, UnknownAreaCode
from ksbb_publisher.domain.stream import parse_position
from ksbb_registry.domain.areas import find_area, validate_area_codes, validate_location
from ksbb_registry.domain.errors import RuleBroken

pytestmark = pytest.mark.unit
KNOWN_CODES = sorted(area.code for area in areas())
LEVELS = ("provinsi", "kota", "kecamatan", "kelurahan")
# Text a client can put in a query parameter or header: any Unicode, digits of every script, look-alikes of ours.
client_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="0123456789²³¹٣৩߃", max_size=40),
    st.from_regex(r"\A[0-9]{1,30}\Z"),
    st.sampled_from(KNOWN_CODES).map(lambda c: c + "x"),
    st.builds(lambda depth: "[" * depth + "]" * depth, st.integers(0, 5000)).map(
        lambda text: base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300)
@given(text=client_text)
@example(text=base64.urlsafe_b64encode(b"[" * 100_000).decode())  # nested past the JSON parser's recursion limit
@example(text="abc")
@example(text="")
def test_a_cursor_is_our_list_or_a_422_naming_the_cursor(text: str) -> None:
    try:
        values = decode_cursor(text)
    except ApiError as refused:
        assert (refused.status, refused.body.code, refused.body.field) == (422, "invalid_cursor", "cursor")
        return
    assert isinstance(values, list)


@given(values=st.lists(json_values, max_size=4))
def test_every_cursor_we_hand_out_reads_back(values: list[Any]) -> None:
    cursor = encode_cursor(values)
    if len(cursor) <= limits.CURSOR_MAX:
        assert decode_cursor(cursor) == json.loads(json.dumps(values))


@settings(max_examples=300)
@given(text=client_text)
@example(text="²")
@example(text="9" * 5000)
@example(text=str(2**63))
def test_a_stream_position_is_a_feed_seq_or_cursor_or_refused_naming_its_field(text: str) -> None:
    try:
        position = parse_position(text, "Last-Event-ID")
    except InvalidStreamPosition as refused:
        assert refused.field == "Last-Event-ID"
        return
    if isinstance(position, int):
        assert 0 <= position < 10**limits.STREAM_SEQ_DIGITS_MAX <= 2**63 and text.strip().isascii()
    else:
        assert "~" in position and len(position) <= limits.STREAM_CURSOR_MAX


@given(seq=st.integers(0, 10**limits.STREAM_SEQ_DIGITS_MAX - 1))
def test_every_sse_id_we_send_is_a_position_we_accept(seq: int) -> None:
    assert parse_position(str(seq), "after") == seq


@settings(max_examples=300)
@given(text=client_text | st.sampled_from(KNOWN_CODES), level=st.sampled_from(LEVELS))
def test_an_area_code_is_known_or_refused_with_its_field(text: str, level: str) -> None:
    known = areas().get(text)
    assert is_area_of_level(text, level) == (known is not None and known.level == level)
    try:
        assert checked_area_code(text, level, "kota") == (text or None)
    except UnknownAreaCode as refused:
        assert refused.field == "kota" and not is_area_of_level(text, level)
    try:
        assert find_area(text).code == text and known is not None
    except RuleBroken as refused:
        assert known is None and refused.field == "code"
    try:
        assert validate_area_codes([text, text]) == [text] and known is not None
    except RuleBroken as refused:
        assert known is None and refused.field == "area_codes.0"
    try:
        assert validate_location(text).kelurahan_code == text
        assert known is not None and known.level == "kelurahan"
    except RuleBroken as refused:
        assert refused.field == "kelurahan_code" and (known is None or known.level != "kelurahan")
