"""Server-side sessions: the browser holds a random session id in an HttpOnly cookie, the tokens stay here.

Documents are keyed by an HMAC-SHA256 of the session id (keyed by the portal's secret key), so the database
never holds a value that would work as a cookie. A session ends after `idle` without use, after `max_age` in
any case, or at sign-out (the document is deleted). Sign-in attempts (state, nonce, PKCE verifier) are
one-use documents of their own, consumed atomically.

Recently read sessions are kept in process for a moment (`ksbb_portal.session_cache`): every change is noted
for the other replicas, which forget their copy within the cache's bound (sign-out included).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ksbb_kit.calm import RepeatingFailure
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_portal.session_cache import ChangeNotes, SessionCache

log = logging.getLogger(__name__)

#: Seconds between two writes of a session's last use (every request reads it; few need to write).
TOUCH_EVERY = timedelta(seconds=60)


def new_secret() -> str:
    """A 256-bit random value, URL-safe (session ids, CSRF tokens, states, nonces)."""
    return secrets.token_urlsafe(32)


def digest(value: str, key: bytes) -> str:
    """What the database stores in place of a secret value."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def now_utc() -> datetime:
    """The current time (UTC, aware)."""
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class Tokens:
    """What the identity provider issued for one session (never leaves the server)."""

    access_token: str
    access_expires_at: datetime
    refresh_token: str | None = None
    refresh_expires_at: datetime | None = None
    id_token: str | None = None

    @classmethod
    def from_response(cls, response: dict[str, Any], at: datetime, previous: Tokens | None = None) -> Tokens:
        """From a token endpoint answer; a refresh answer may omit the ID token or refresh token."""
        refresh_in = response.get("refresh_expires_in")
        return cls(
            access_token=str(response["access_token"]),
            access_expires_at=at + timedelta(seconds=int(response.get("expires_in") or 60)),
            refresh_token=response.get("refresh_token") or (previous.refresh_token if previous else None),
            refresh_expires_at=(at + timedelta(seconds=int(refresh_in))) if refresh_in else
            (previous.refresh_expires_at if previous else None),
            id_token=response.get("id_token") or (previous.id_token if previous else None),
        )

    def to_document(self) -> dict[str, Any]:
        """Stored fields."""
        return {"access_token": self.access_token, "access_expires_at": self.access_expires_at,
                "refresh_token": self.refresh_token, "refresh_expires_at": self.refresh_expires_at,
                "id_token": self.id_token}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Tokens:
        """From stored fields."""
        expires = _aware(doc.get("access_expires_at"))
        assert expires is not None
        return cls(access_token=doc["access_token"], access_expires_at=expires, refresh_token=doc.get("refresh_token"),
                   refresh_expires_at=_aware(doc.get("refresh_expires_at")), id_token=doc.get("id_token"))


@dataclass
class Person:
    """Who is signed in, as the access token describes them (the role rule is the services' own)."""

    subject: str
    role: str
    name: str | None = None
    email: str | None = None
    org_id: str | None = None
    recipient_id: str | None = None


@dataclass
class Session:
    """One signed-in browser."""

    session_id: str  # the cookie value; only ever in memory
    key: str  # the document id: the keyed digest of session_id
    person: Person
    tokens: Tokens
    csrf_token: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    lang: str = "id"
    flash: list[dict[str, str]] = field(default_factory=list)


@dataclass
class LoginAttempt:
    """A started sign-in: bound to the browser that started it by a cookie whose digest is kept here."""

    state: str
    binding_digest: str
    code_verifier: str
    nonce: str
    return_to: str
    lang: str
    previous_session_key: str | None
    expires_at: datetime


class SessionStore:
    """Sessions, sign-in attempts and sign-out tickets in the portal's own MongoDB database."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, secret: bytes, idle: timedelta,
                 max_age: timedelta, cache: SessionCache | None = None) -> None:
        self.db = db
        self._secret = secret
        self.idle = idle
        self.max_age = max_age
        self.cache = cache or SessionCache(0)
        self.changes = ChangeNotes(db.session_changes, self.cache, now_utc)

    @classmethod
    def connect(cls, url: str, database: str, *, secret: bytes, idle: timedelta, max_age: timedelta,
                cache_bound_seconds: float = 0.0) -> tuple[SessionStore, Any]:
        """A store on its own client (returned too, to be closed at shutdown); with a bound > 0, sessions are
        kept in process that long at most after a change elsewhere (`follow_changes` must then run)."""
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)
        return cls(client[database], secret=secret, idle=idle, max_age=max_age,
                   cache=SessionCache(cache_bound_seconds)), client

    def digest(self, value: str) -> str:
        """The database key of a secret value (session id, state, binding)."""
        return digest(value, self._secret)

    async def ping(self) -> bool:
        """Whether the database answers."""
        try:
            await self.db.command("ping")
        except Exception:
            return False
        return True

    # -- sessions -------------------------------------------------------------------------------------

    async def create(self, person: Person, tokens: Tokens, lang: str) -> Session:
        """A new session with a fresh id and CSRF token (never reuses anything the browser sent)."""
        at = now_utc()
        session_id = new_secret()
        session = Session(session_id=session_id, key=self.digest(session_id), person=person, tokens=tokens,
                          csrf_token=new_secret(), created_at=at, last_used_at=at, expires_at=at + self.max_age,
                          lang=lang)
        await self.db.sessions.insert_one({
            "_id": session.key, "person": person.__dict__, "tokens": tokens.to_document(),
            "csrf_token": session.csrf_token, "created_at": at, "last_used_at": at, "expires_at": session.expires_at,
            "idle_expires_at": at + self.idle, "lang": lang, "flash": [],
        })
        return session

    async def get(self, session_id: str | None, *, fresh: bool = False) -> Session | None:
        """The live session of a cookie value; an ended one is deleted and None returned. A copy kept in process
        is used unless `fresh`, as long as no write is due (the last use is written at most every TOUCH_EVERY)."""
        if not session_id or len(session_id) > 128:
            return None
        key = self.digest(session_id)
        at = now_utc()
        kept = None if fresh else self.cache.get(key)
        if kept is not None:
            session = self._session_of(session_id, key, kept, at)
            if at < session.expires_at and at - session.last_used_at < TOUCH_EVERY:
                return session
        read_in_epoch = self.cache.epoch
        doc = await self.db.sessions.find_one({"_id": key})
        if doc is None:
            self.cache.forget(key)
            return None
        session = self._session_of(session_id, key, doc, at)
        if at >= session.expires_at or at >= session.last_used_at + self.idle:
            self.cache.forget(key)
            await self.db.sessions.delete_one({"_id": key})
            return None
        if at - session.last_used_at >= TOUCH_EVERY:
            await self.db.sessions.update_one({"_id": key}, {"$set": {"last_used_at": at,
                                                                       "idle_expires_at": at + self.idle}})
            session.last_used_at = doc["last_used_at"] = at
        if not doc.get("flash"):  # pending messages are read from the database, so no replica shows them twice
            self.cache.put(key, doc, read_in_epoch)
        return session

    @staticmethod
    def _session_of(session_id: str, key: str, doc: dict[str, Any], at: datetime) -> Session:
        """A session of its stored document (every mutable part copied: documents may be shared)."""
        expires, last_used = _aware(doc["expires_at"]), _aware(doc["last_used_at"])
        assert expires is not None and last_used is not None
        return Session(
            session_id=session_id, key=key, person=Person(**doc["person"]), tokens=Tokens.from_document(doc["tokens"]),
            csrf_token=doc["csrf_token"], created_at=_aware(doc["created_at"]) or at, last_used_at=last_used,
            expires_at=expires, lang=doc.get("lang", "id"), flash=list(doc.get("flash") or []),
        )

    async def follow_changes(self) -> None:
        """Read the change notes three times per bound, for as long as the process runs (a late or failed read
        leaves slack before copies stop being used; while the notes cannot be read, sessions are read from the
        database)."""
        if not self.cache.enabled:
            return
        failing = RepeatingFailure(log, "could not read the session change notes; sessions are read from the database")
        indexed = False
        while True:
            try:
                if not indexed:
                    # A real MongoDB then reads only the notes since the last read (the stand-in scans the few
                    # minutes of notes kept either way).
                    await self.changes.collection.create_index("at")
                    indexed = True
                await self.changes.read()
                failing.recovered()
            except Exception as error:
                failing.failed(error)
            await asyncio.sleep(self.cache.bound / 3)

    async def replace_tokens(self, session: Session, tokens: Tokens, *, expected_refresh: str | None) -> bool:
        """Store refreshed tokens unless another request refreshed first (compare-and-set on the refresh token)."""
        result = await self.db.sessions.update_one(
            {"_id": session.key, "tokens.refresh_token": expected_refresh},
            {"$set": {"tokens": tokens.to_document(), "person": session.person.__dict__}},
        )
        if result.modified_count == 1:
            session.tokens = tokens
            await self.changes.note(session.key)
            return True
        return False

    async def reload_tokens(self, session: Session) -> bool:
        """Take the tokens another request stored; False when the session is gone."""
        self.cache.forget(session.key)
        doc = await self.db.sessions.find_one({"_id": session.key}, {"tokens": 1})
        if doc is None:
            return False
        session.tokens = Tokens.from_document(doc["tokens"])
        return True

    async def set_lang(self, session: Session, lang: str) -> None:
        """Remember the language choice with the session."""
        await self.db.sessions.update_one({"_id": session.key}, {"$set": {"lang": lang}})
        await self.changes.note(session.key)
        session.lang = lang

    async def push_flash(self, session: Session, kind: str, text: str) -> None:
        """A message for the next page this browser sees (after a redirect)."""
        await self.db.sessions.update_one({"_id": session.key}, {"$push": {"flash": {"kind": kind, "text": text}}})
        await self.changes.note(session.key)

    async def take_flash(self, session: Session) -> list[dict[str, str]]:
        """The pending messages, removed."""
        if not session.flash:
            return []
        await self.db.sessions.update_one({"_id": session.key}, {"$set": {"flash": []}})
        await self.changes.note(session.key)
        taken, session.flash = session.flash, []
        return taken

    async def end(self, session_key: str) -> dict[str, Any] | None:
        """Delete a session (sign-out, expiry, refresh refused); returns what it held, if it existed. Every replica
        refuses it within the cache's bound."""
        ended = await self.db.sessions.find_one_and_delete({"_id": session_key})
        await self.changes.note(session_key)
        return ended

    # -- sign-in attempts ------------------------------------------------------------------------------

    async def start_login(self, binding: str, return_to: str, lang: str, previous_session_id: str | None,
                          ttl: timedelta) -> LoginAttempt:
        """Remember a sign-in in progress (state, nonce, PKCE verifier) for the browser holding `binding`."""
        attempt = LoginAttempt(
            state=new_secret(), binding_digest=self.digest(binding), code_verifier=secrets.token_urlsafe(64),
            nonce=new_secret(), return_to=return_to, lang=lang,
            previous_session_key=self.digest(previous_session_id) if previous_session_id else None,
            expires_at=now_utc() + ttl,
        )
        await self.db.logins.insert_one({"_id": self.digest(attempt.state), **attempt.__dict__, "state": None})
        return attempt

    async def finish_login(self, state: str, binding: str | None) -> LoginAttempt | None:
        """The attempt a callback's state names — once only, and only in the browser that started it."""
        if not state or not binding or len(state) > 128:
            return None
        doc = await self.db.logins.find_one_and_delete({"_id": self.digest(state)})
        if doc is None or not secrets.compare_digest(doc["binding_digest"], self.digest(binding)):
            return None
        expires = _aware(doc["expires_at"])
        if expires is None or now_utc() >= expires:
            return None
        doc.pop("_id")
        doc["state"] = state
        doc["expires_at"] = expires
        return LoginAttempt(**doc)

    # -- housekeeping ----------------------------------------------------------------------------------

    async def delete_ended(self) -> int:
        """Delete ended sessions and abandoned sign-ins (the database stand-in has no TTL index)."""
        at = now_utc()
        removed = 0
        result = await self.db.sessions.delete_many({"$or": [{"expires_at": {"$lt": at}},
                                                             {"idle_expires_at": {"$lt": at}}]})
        removed += result.deleted_count
        result = await self.db.logins.delete_many({"expires_at": {"$lt": at}})
        return removed + result.deleted_count + await self.changes.delete_old()
