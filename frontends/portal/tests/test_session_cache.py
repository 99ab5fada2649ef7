"""The in-process session copies: used only while the change notes were read less than the bound ago, forgotten
when a note names them, never kept from a database read that a note overtook, bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_portal.session_cache import SessionCache

pytestmark = pytest.mark.unit


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_copies_are_used_only_while_the_notes_are_fresh() -> None:
    clock = Clock()
    cache = SessionCache(1.0, clock=clock)
    cache.put("k", {"lang": "id"}, cache.epoch)
    assert cache.get("k") is None, "no notes read yet: nothing is used"
    cache.noted(set(), clock.now)
    assert cache.get("k") == {"lang": "id"}
    clock.now += 0.99
    assert cache.get("k") is not None
    clock.now += 0.02
    assert cache.get("k") is None, "the notes were last read more than the bound ago (a stuck reader)"
    # A read that started late extends the use only to its own start plus the bound.
    cache.noted(set(), clock.now - 0.5)
    assert cache.get("k") is not None
    clock.now += 0.51
    assert cache.get("k") is None


def test_a_note_forgets_the_copy_and_a_read_it_overtook_is_not_kept() -> None:
    clock = Clock()
    cache = SessionCache(1.0, clock=clock)
    cache.noted(set(), clock.now)
    cache.put("k", {"v": 1}, cache.epoch)
    read_began = cache.epoch  # a database read begins, then another replica changes the session
    cache.noted({"k"}, clock.now)
    assert cache.get("k") is None
    cache.put("k", {"v": "stale"}, read_began)
    assert cache.get("k") is None, "what the read returned may predate the change"
    cache.put("k", {"v": 2}, cache.epoch)  # a read begun after the note was read sees the change
    assert cache.get("k") == {"v": 2}
    cache.forget("k")
    assert cache.get("k") is None


def test_a_bound_of_zero_keeps_nothing() -> None:
    cache = SessionCache(0)
    cache.noted(set(), 0.0)
    cache.put("k", {}, cache.epoch)
    assert not cache.enabled and cache.get("k") is None


@given(st.lists(st.text(min_size=1, max_size=3), max_size=60), st.integers(min_value=1, max_value=8))
def test_the_copies_are_bounded_and_the_newest_are_kept(keys: list[str], size: int) -> None:
    cache = SessionCache(10.0, max_entries=size, clock=lambda: 0.0)
    cache.noted(set(), 0.0)
    for key in keys:
        cache.put(key, {"key": key}, cache.epoch)
    newest = list(dict.fromkeys(reversed(keys)))[:size]
    assert all(cache.get(key) == {"key": key} for key in newest)
    assert sum(cache.get(key) is not None for key in set(keys)) == min(size, len(set(keys)))
