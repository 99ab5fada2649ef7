"""Reuse of public API answers: only what the API marks `public, max-age`, never longer than allowed or than the
portal's limit, one shared call for concurrent askers, bounded, and each reader gets its own objects."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from ksbb_portal import api as api_module
from ksbb_portal.api import PublicAnswers, Stored

pytestmark = pytest.mark.unit


def answer(body: object, *, status: int = 200, control: str = "public, max-age=15") -> httpx.Response:
    """An API answer as httpx hands it over."""
    return httpx.Response(status, content=json.dumps(body).encode(),
                          headers={"content-type": "application/json", "cache-control": control, "etag": '"e1"'})


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(api_module.time, "monotonic", moved)
    return moved


def loader(responses: list[httpx.Response]) -> tuple[list[int], object]:
    calls: list[int] = []

    async def load() -> httpx.Response:
        calls.append(1)
        await asyncio.sleep(0)
        return responses[min(len(calls), len(responses)) - 1]

    return calls, load


async def test_a_public_answer_is_reused_until_the_shorter_of_max_age_and_the_portal_limit(clock: Clock) -> None:
    answers = PublicAnswers(seconds=3)
    calls, load = loader([answer({"n": 1}), answer({"n": 2})])
    key = ("/v1/public/needs", (("status", "open"),), "id")
    first = await answers.get(key, load)  # type: ignore[arg-type]
    assert isinstance(first, Stored) and json.loads(first.body) == {"n": 1} and first.etag == '"e1"'
    clock.now += 2.9
    assert json.loads((await answers.get(key, load)).body) == {"n": 1}  # type: ignore[arg-type, union-attr]
    assert len(calls) == 1
    clock.now += 0.2
    assert json.loads((await answers.get(key, load)).body) == {"n": 2}  # type: ignore[arg-type, union-attr]
    assert len(calls) == 2
    short = PublicAnswers(seconds=30)
    calls, load = loader([answer({"n": 1}, control="public, max-age=2"), answer({"n": 2})])
    await short.get(key, load)  # type: ignore[arg-type]
    clock.now += 2.5
    await short.get(key, load)  # type: ignore[arg-type]
    assert len(calls) == 2, "never reused longer than the API's max-age"


@pytest.mark.parametrize("response", [
    answer({"code": "not_found"}, status=404),
    answer({"n": 1}, control="private, max-age=15"),
    answer({"n": 1}, control="no-store"),
    answer({"n": 1}, control="public"),
    answer({"n": 1}, control="public, no-store, max-age=15"),
    httpx.Response(200, content=b"<html>", headers={"content-type": "text/html", "cache-control": "public, max-age=9"}),
], ids=["error", "private", "no-store", "no-max-age", "public-no-store", "not-json"])
async def test_answers_not_marked_public_with_a_max_age_are_never_reused(response: httpx.Response,
                                                                         clock: Clock) -> None:
    answers = PublicAnswers(seconds=5)
    calls, load = loader([response])
    for _ in range(3):
        got = await answers.get(("/x", (), "id"), load)  # type: ignore[arg-type]
        assert got is response
    assert len(calls) == 3


async def test_concurrent_askers_share_one_call_and_a_failure_reaches_each(clock: Clock) -> None:
    answers = PublicAnswers(seconds=5)
    calls, load = loader([answer({"n": 1})])
    got = await asyncio.gather(*(answers.get(("/y", (), "id"), load) for _ in range(20)))  # type: ignore[arg-type]
    assert len(calls) == 1 and {json.loads(g.body)["n"] for g in got} == {1}  # type: ignore[union-attr]

    async def failing() -> httpx.Response:
        calls.append(1)
        await asyncio.sleep(0)
        raise httpx.ConnectError("gateway down")

    results = await asyncio.gather(*(answers.get(("/z", (), "id"), failing) for _ in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(r, httpx.ConnectError) for r in results) and len(calls) == 2
    calls.clear()
    with pytest.raises(httpx.ConnectError):
        await answers.get(("/z", (), "id"), failing)  # a failure is not kept: the next asker tries again
    assert len(calls) == 1


async def test_languages_and_queries_are_kept_apart_and_the_store_is_bounded(clock: Clock) -> None:
    answers = PublicAnswers(seconds=5, max_entries=3)
    calls, load = loader([answer({"n": 1})])
    keys = [("/n", (("kota", "31.71"),), "id"), ("/n", (("kota", "31.71"),), "en"), ("/n", (), "id"),
            ("/n", (("kind", "pesantren"),), "id")]
    for key in keys:
        await answers.get(key, load)  # type: ignore[arg-type]
    assert len(calls) == 4
    await answers.get(keys[0], load)  # type: ignore[arg-type]  # the oldest was dropped
    assert len(calls) == 5
    await answers.get(keys[3], load)  # type: ignore[arg-type]
    assert len(calls) == 5


async def test_a_portal_limit_of_zero_turns_reuse_off(clock: Clock) -> None:
    answers = PublicAnswers(seconds=0)
    calls, load = loader([answer({"n": 1})])
    await answers.get(("/n", (), "id"), load)  # type: ignore[arg-type]
    await answers.get(("/n", (), "id"), load)  # type: ignore[arg-type]
    assert len(calls) == 2


async def test_concurrent_askers_of_an_answer_that_may_not_be_kept_still_share_one_call(clock: Clock) -> None:
    # As the pledges service answers a need's ledger: public data, no Cache-Control (the numbers are live).
    answers = PublicAnswers(seconds=5)
    live = httpx.Response(200, content=b'{"remaining": 3}', headers={"content-type": "application/json"})
    calls, load = loader([live])
    got = await asyncio.gather(*(answers.get(("/v1/needs/n1/ledger", (), "id"), load)  # type: ignore[arg-type]
                                 for _ in range(10)))
    assert len(calls) == 1 and all(g is live for g in got)
    await answers.get(("/v1/needs/n1/ledger", (), "id"), load)  # type: ignore[arg-type]
    assert len(calls) == 2, "once answered, it is never reused"
