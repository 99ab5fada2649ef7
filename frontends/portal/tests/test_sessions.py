"""Server-side sessions on the real MongoDB-protocol server: expiry, one-use sign-in attempts bound to their
browser, refreshes that never spend a refresh token twice, housekeeping."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.waiting import eventually
from ksbb_portal.api import Refresher, SignInRequired
from ksbb_portal.oidc import RefreshRefused
from ksbb_portal.sessions import Person, SessionStore, Tokens, now_utc

pytestmark = pytest.mark.integration


def access_token(role: str = "donor", **claims: str) -> str:
    """An unsigned token-shaped value carrying claims (the portal reads, the services verify)."""
    import base64
    import json

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part({'sub': 'user-1', 'realm_access': {'roles': [role]}, **claims})}.sig"


@pytest.fixture
async def store(infra: Infra, namespace: str) -> AsyncIterator[SessionStore]:
    """A session store in this test's own database."""
    made, client = SessionStore.connect(infra.mongodb_url, f"{namespace.replace('.', '_')}ksbb_portal",
                                        secret=b"test-key", idle=timedelta(minutes=30), max_age=timedelta(hours=10))
    yield made
    await client.close()


def tokens(access: str = "a1", refresh: str = "r1", seconds: int = 300) -> Tokens:
    """Tokens valid for a while."""
    return Tokens(access_token=access, access_expires_at=now_utc() + timedelta(seconds=seconds),
                  refresh_token=refresh, id_token="i1")


async def test_a_session_is_found_by_its_cookie_value_and_stored_under_its_digest(store: SessionStore) -> None:
    session = await store.create(Person("user-1", "donor", "Dewi"), tokens(), "en")
    assert len(session.session_id) >= 43 and len(session.csrf_token) >= 43
    found = await store.get(session.session_id)
    assert found is not None and found.person.name == "Dewi" and found.lang == "en"
    assert await store.db.sessions.count_documents({"_id": session.session_id}) == 0
    keyed = hmac.new(b"test-key", session.session_id.encode(), hashlib.sha256).hexdigest()
    assert await store.db.sessions.count_documents({"_id": keyed}) == 1
    assert keyed != hashlib.sha256(session.session_id.encode()).hexdigest(), "keyed, not a plain hash"
    assert await store.get("not-a-session") is None
    assert await store.get("x" * 500) is None


async def test_idle_and_old_sessions_end(store: SessionStore) -> None:
    idle = await store.create(Person("u", "donor"), tokens(), "id")
    await store.db.sessions.update_one({"_id": idle.key}, {"$set": {"last_used_at": now_utc() - timedelta(hours=1)}})
    assert await store.get(idle.session_id) is None
    assert await store.db.sessions.count_documents({"_id": idle.key}) == 0, "an ended session is deleted"

    old = await store.create(Person("u", "donor"), tokens(), "id")
    await store.db.sessions.update_one({"_id": old.key}, {"$set": {"expires_at": now_utc() - timedelta(seconds=1)}})
    assert await store.get(old.session_id) is None


async def test_use_keeps_a_session_alive_and_sign_out_deletes_it(store: SessionStore) -> None:
    session = await store.create(Person("u", "donor"), tokens(), "id")
    earlier = now_utc() - timedelta(minutes=20)
    await store.db.sessions.update_one({"_id": session.key}, {"$set": {"last_used_at": earlier}})
    assert await store.get(session.session_id) is not None
    doc = await store.db.sessions.find_one({"_id": session.key})
    assert doc is not None and doc["last_used_at"] > earlier + timedelta(minutes=19)
    ended = await store.end(session.key)
    assert ended is not None and ended["tokens"]["refresh_token"] == "r1"
    assert await store.get(session.session_id) is None


async def test_a_sign_in_attempt_is_used_once_and_only_by_the_browser_that_started_it(store: SessionStore) -> None:
    attempt = await store.start_login("binding-1", "/portal/needs", "id", None, timedelta(minutes=10))
    assert len(attempt.code_verifier) >= 43 and attempt.nonce and attempt.state
    assert await store.finish_login(attempt.state, "another-browser") is None
    # A wrong browser's try consumed it: the state is single-use whoever presents it.
    assert await store.finish_login(attempt.state, "binding-1") is None

    second = await store.start_login("binding-2", "/portal/my/pledges", "en", "old-session", timedelta(minutes=10))
    finished = await store.finish_login(second.state, "binding-2")
    assert finished is not None and finished.return_to == "/portal/my/pledges" and finished.lang == "en"
    assert finished.code_verifier == second.code_verifier
    assert finished.previous_session_key == store.digest("old-session")
    assert await store.finish_login(second.state, "binding-2") is None

    late = await store.start_login("binding-3", "/portal/", "id", None, timedelta(seconds=-1))
    assert await store.finish_login(late.state, "binding-3") is None


class CountingProvider:
    """The identity provider's refresh endpoint: each refresh token works once (the realm's rule)."""

    def __init__(self, refuse: bool = False) -> None:
        self.spent: set[str] = set()
        self.calls = 0
        self.refuse = refuse

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(0.05)
        if self.refuse or refresh_token in self.spent:
            raise RefreshRefused("invalid_grant")
        self.spent.add(refresh_token)
        return {"access_token": access_token(name="Dewi"), "expires_in": 300, "refresh_token": f"{refresh_token}+",
                "refresh_expires_in": 1800}


async def test_concurrent_requests_refresh_once_and_share_the_new_tokens(store: SessionStore) -> None:
    provider = CountingProvider()
    refresher = Refresher(provider, store, margin_seconds=30)  # type: ignore[arg-type]
    session = await store.create(Person("user-1", "donor"), tokens(seconds=5), "id")
    copies = [await store.get(session.session_id) for _ in range(5)]
    assert all(copy is not None and refresher.due(copy) for copy in copies)
    await asyncio.gather(*(refresher.refresh(copy, stale_token="a1") for copy in copies if copy))
    assert provider.calls == 1, "one refresh for five requests"
    stored = await store.get(session.session_id)
    assert stored is not None and stored.tokens.refresh_token == "r1+" and not refresher.due(stored)
    assert all(copy is not None and copy.tokens.refresh_token == "r1+" for copy in copies)


async def test_another_replica_refreshing_first_is_not_a_sign_out(store: SessionStore) -> None:
    provider = CountingProvider()
    session = await store.create(Person("user-1", "donor"), tokens(seconds=5), "id")
    here = await store.get(session.session_id)
    assert here is not None
    # Another process refreshed a moment ago and stored its tokens; this process still holds the old ones.
    provider.spent.add("r1")
    replaced = Tokens(access_token=access_token(), access_expires_at=datetime.now(UTC) + timedelta(minutes=5),
                      refresh_token="r1-by-other", id_token="i1")
    assert await store.replace_tokens(here, replaced, expected_refresh="r1")
    stale = await store.get(session.session_id)
    assert stale is not None
    stale.tokens = tokens(seconds=5)  # as read before the other replica's write
    await Refresher(provider, store, 30).refresh(stale, stale_token="a1")  # type: ignore[arg-type]
    assert stale.tokens.refresh_token == "r1-by-other"
    assert await store.get(session.session_id) is not None


async def test_a_refused_refresh_ends_the_session(store: SessionStore) -> None:
    provider = CountingProvider(refuse=True)
    session = await store.create(Person("user-1", "donor"), tokens(seconds=5), "id")
    with pytest.raises(SignInRequired):
        await Refresher(provider, store, 30).refresh(session, stale_token="a1")  # type: ignore[arg-type]
    assert await store.get(session.session_id) is None


async def test_housekeeping_deletes_ended_sessions_and_abandoned_sign_ins(store: SessionStore) -> None:
    live = await store.create(Person("u", "donor"), tokens(), "id")
    gone = await store.create(Person("u", "donor"), tokens(), "id")
    await store.db.sessions.update_one({"_id": gone.key}, {"$set": {"idle_expires_at": now_utc() - timedelta(1)}})
    await store.start_login("b", "/portal/", "id", None, timedelta(seconds=-5))
    kept = await store.start_login("c", "/portal/", "id", None, timedelta(minutes=5))
    assert await store.delete_ended() == 2
    assert await store.get(live.session_id) is not None
    assert await store.finish_login(kept.state, "c") is not None


@pytest.fixture
async def replicas(infra: Infra, namespace: str) -> AsyncIterator[tuple[SessionStore, SessionStore]]:
    """Two portal processes' session stores on one database, each keeping copies for at most 1 s."""
    made, clients = [], []
    for _ in range(2):
        store, client = SessionStore.connect(
            infra.mongodb_url, f"{namespace.replace('.', '_')}ksbb_portal", secret=b"test-key",
            idle=timedelta(minutes=30), max_age=timedelta(hours=10), cache_bound_seconds=1.0)
        made.append(store)
        clients.append(client)
    yield made[0], made[1]
    for client in clients:
        await client.close()


async def test_a_sign_out_on_one_replica_ends_the_session_on_the_other_at_its_next_read_of_the_notes(
    replicas: tuple[SessionStore, SessionStore],
) -> None:
    here, there = replicas
    await there.changes.read()
    session = await here.create(Person("user-1", "donor", "Dewi"), tokens(), "id")
    assert await there.get(session.session_id) is not None
    assert there.cache.get(session.key) is not None, "the other replica keeps a copy"
    await there.db.sessions.update_one({"_id": session.key}, {"$set": {"csrf_token": "changed-behind-its-back"}})
    kept = await there.get(session.session_id)
    assert kept is not None and kept.csrf_token == session.csrf_token, "the copy was used, not the database"

    assert await here.end(session.key) is not None
    assert await here.get(session.session_id) is None, "the replica that signed out refuses at once"
    await there.changes.read()
    assert there.cache.get(session.key) is None
    assert await there.get(session.session_id) is None


async def test_the_other_replica_follows_the_notes_by_itself(replicas: tuple[SessionStore, SessionStore]) -> None:
    here, there = replicas
    follower = asyncio.create_task(there.follow_changes())
    try:
        session = await here.create(Person("user-1", "donor"), tokens(), "id")
        await eventually(lambda: there.cache.usable(), within=30, what="the other replica read the notes")
        assert await there.get(session.session_id) is not None
        await here.end(session.key)
        ended_in = there.cache.epoch
        # Two more reads: the second surely began after the sign-out was noted.
        await eventually(lambda: there.cache.epoch >= ended_in + 2, within=30, what="two reads of the notes")
        assert await there.get(session.session_id) is None
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower


async def test_language_tokens_and_messages_changed_on_one_replica_reach_the_other(
    replicas: tuple[SessionStore, SessionStore],
) -> None:
    here, there = replicas
    await there.changes.read()
    session = await here.create(Person("user-1", "donor"), tokens(), "id")
    seen = await there.get(session.session_id)
    assert seen is not None and seen.lang == "id"

    mine = await here.get(session.session_id)
    assert mine is not None
    await here.set_lang(mine, "en")
    await here.replace_tokens(mine, tokens(access="a2", refresh="r2"), expected_refresh="r1")
    await here.push_flash(mine, "success", "Terima kasih")
    await there.changes.read()
    seen = await there.get(session.session_id)
    assert seen is not None and seen.lang == "en" and seen.tokens.refresh_token == "r2"
    assert seen.flash == [{"kind": "success", "text": "Terima kasih"}]
    assert there.cache.get(session.key) is None, "a session with messages waiting is never kept"
    assert await there.take_flash(seen) == [{"kind": "success", "text": "Terima kasih"}]
    await here.changes.read()
    again = await here.get(session.session_id)
    assert again is not None and again.flash == []


async def test_copies_are_not_used_when_the_notes_cannot_be_read(
    replicas: tuple[SessionStore, SessionStore],
) -> None:
    here, there = replicas
    await there.changes.read()
    session = await here.create(Person("user-1", "donor"), tokens(), "id")
    assert await there.get(session.session_id) is not None
    await here.end(session.key)
    # No read of the notes since: once the bound has passed, the copy is not used.
    await eventually(lambda: not there.cache.usable(), within=30, what="the bound passed")
    assert await there.get(session.session_id) is None


async def test_a_kept_session_is_still_written_as_used_and_ends_when_idle(
    replicas: tuple[SessionStore, SessionStore],
) -> None:
    here, _ = replicas
    await here.changes.read()
    session = await here.create(Person("user-1", "donor"), tokens(), "id")
    assert await here.get(session.session_id) is not None
    earlier = now_utc() - timedelta(minutes=20)
    await here.db.sessions.update_one({"_id": session.key}, {"$set": {"last_used_at": earlier}})
    await here.changes.note(session.key)  # as another replica's use would not be noted: the copy is forgotten
    assert await here.get(session.session_id) is not None
    doc = await here.db.sessions.find_one({"_id": session.key})
    assert doc is not None and doc["last_used_at"] > earlier + timedelta(minutes=19)
    kept = here.cache.get(session.key)
    assert kept is not None
    # A copy whose last use is older than the write interval is never used: the database decides (idle end).
    kept["last_used_at"] = now_utc() - timedelta(hours=1)
    await here.db.sessions.update_one({"_id": session.key}, {"$set": {"last_used_at": now_utc() - timedelta(hours=1)}})
    assert await here.get(session.session_id) is None
