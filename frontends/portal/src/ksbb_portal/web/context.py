"""What every page handler gets: the person (if signed in), the language, the API, rendering and forms."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from ksbb_kit.auth import Role
from starlette.datastructures import FormData

from ksbb_portal import formatting, i18n
from ksbb_portal.api import Api, Gateway, Refresher
from ksbb_portal.oidc import RelyingParty
from ksbb_portal.sessions import Session, SessionStore
from ksbb_portal.settings import PortalSettings

HERE = Path(__file__).resolve().parent.parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LANG_COOKIE = "ksbb_lang"
#: Set after a change the next page must show (a flash message): that page reads its session from the database,
#: whichever replica serves it, rather than a copy another replica may still keep (see ksbb_portal.session_cache).
SYNC_COOKIE = "ksbb_portal_sync"
#: htmx settings (CSP-friendly: no eval, no injected style element; no page copies kept in localStorage).
HTMX_CONFIG = (
    '{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0,'
    '"refreshOnHistoryMiss":true,"selfRequestsOnly":true,"responseHandling":[{"code":"204","swap":false},'
    '{"code":"[2345]..","swap":true,"error":false},{"code":"...","swap":false,"error":true}]}'
)


class NeedsSignIn(Exception):
    """The page needs a signed-in person; the browser is sent to sign in and then back to `return_to`."""

    def __init__(self, return_to: str) -> None:
        super().__init__(return_to)
        self.return_to = return_to


class Refused(Exception):
    """The signed-in person may not see this page (another role's page, a form without its CSRF token)."""

    def __init__(self, reason_key: str, status: int = 403) -> None:
        super().__init__(reason_key)
        self.reason_key = reason_key
        self.status = status


@dataclass
class Parts:
    """The portal's long-lived parts, built once by the composition root."""

    settings: PortalSettings
    store: SessionStore
    rp: RelyingParty
    gateway: Gateway
    refresher: Refresher
    templates: Environment
    asset_version: str
    vendor_dir: Path
    caches: dict[str, Any] = field(default_factory=dict)


def template_environment() -> Environment:
    """Jinja2 with autoescaping and the portal's formatting filters.

    Missing values render empty: the services leave optional fields out of their answers."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True, auto_reload=False)  # templates ship with the code
    env.filters.update(number=formatting.number, rupiah=formatting.rupiah, iso_date=formatting.iso_date)
    return env


def asset_version() -> str:
    """A short hash of the style sheet, so a changed file is never served from an old cache."""
    return hashlib.sha256((STATIC / "portal.css").read_bytes()).hexdigest()[:10]


def _safe_lang(value: str | None) -> str | None:
    return value if value in i18n.LANGUAGES else None


def safe_return_to(value: str | None, root_path: str) -> str:
    """A same-site path under the portal to come back to (anything else, e.g. another host, goes home)."""
    if not value:
        return root_path + "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith(root_path + "/") or "\\" in value or "//" in value:
        return root_path + "/"
    return value


@dataclass
class Page:
    """One request as the portal sees it."""

    request: Request
    parts: Parts
    session: Session | None
    lang: str
    api: Api
    set_lang_cookie: bool = False
    read_fresh: bool = False  # the session was read from the database because of the sync cookie
    flash_pushed: bool = False
    flash_shown: bool = False

    # -- who ----------------------------------------------------------------------------------------

    @property
    def role(self) -> str | None:
        """The signed-in person's role."""
        return self.session.person.role if self.session else None

    @property
    def settings(self) -> PortalSettings:
        """The portal's settings."""
        return self.parts.settings

    # -- words and addresses ----------------------------------------------------------------------

    def _(self, key: str, **values: Any) -> str:
        """A text in the page's language."""
        return i18n.text(key, self.lang, **values)

    def _label(self, group: str, code: str | None) -> str:
        """The label of a vocabulary code in the page's language."""
        return i18n.label(group, code, self.lang)

    def url(self, path: str, **query: Any) -> str:
        """A portal address (under the gateway's prefix) with an optional query."""
        clean = {k: v for k, v in query.items() if v not in (None, "", False)}
        return f"{self.settings.root_path}{path}" + (f"?{urlencode(clean, doseq=True)}" if clean else "")

    def here(self) -> str:
        """This page's address (path and query) as the browser asked for it."""
        query = self.request.url.query
        return self.request.url.path + (f"?{query}" if query else "")

    def lang_url(self, lang: str) -> str:
        """This page in another language."""
        query = [(k, v) for k, v in self.request.query_params.multi_items() if k != "lang"]
        query.append(("lang", lang))
        return f"{self.request.url.path}?{urlencode(query)}"

    # -- rendering ----------------------------------------------------------------------------------

    async def render(self, template: str, *, status: int = 200, title: str | None = None,
                     **values: Any) -> HTMLResponse:
        """A full page; its flash messages are consumed."""
        flash = await self.parts.store.take_flash(self.session) if self.session else []
        self.flash_shown = True
        lang = self.lang
        context = {
            "page": self, "lang": lang, "_": self._, "url": self.url, "static": self.static,
            "person": self.session.person if self.session else None, "role": self.role,
            "csrf_token": self.session.csrf_token if self.session else "", "flash": flash, "title": title or "",
            "htmx_config": HTMX_CONFIG, "fmt": formatting, "labels": i18n.labels(lang),
            "date": lambda v: formatting.long_date(v, lang), "datetime": lambda v: formatting.date_time(v, lang),
            "root": self.settings.root_path, "values": {}, "errors": {}, **values,
        }
        html = self.parts.templates.get_template(template).render(context)
        response = HTMLResponse(html, status_code=status)
        self.finish(response)
        return response

    def static(self, name: str) -> str:
        """Address of a static file, versioned."""
        return f"{self.settings.root_path}/static/{name}?v={self.parts.asset_version}"

    def finish(self, response: Response) -> Response:
        """Headers every portal answer carries: no caching of personal pages, the language cookie."""
        response.headers["Cache-Control"] = "no-store" if self.session else "private, no-cache"
        response.headers["Vary"] = "Cookie, HX-Request"
        if self.request.headers.get("hx-request") and self.request.method == "GET":
            response.headers["HX-Push-Url"] = self.here()
        if self.set_lang_cookie:
            response.set_cookie(LANG_COOKIE, self.lang, max_age=365 * 24 * 3600, path=self.settings.root_path,
                                samesite="lax", httponly=True, secure=self.secure)
        if self.flash_pushed:
            response.set_cookie(SYNC_COOKIE, "1", max_age=300, path=self.settings.root_path, samesite="lax",
                                httponly=True, secure=self.secure)
        elif self.read_fresh and self.flash_shown:
            response.delete_cookie(SYNC_COOKIE, path=self.settings.root_path)
        return response

    @property
    def secure(self) -> bool:
        """Whether cookies get the Secure attribute (TLS, or forced by the settings)."""
        if self.settings.cookie_secure is not None:
            return self.settings.cookie_secure
        return self.request.url.scheme == "https"

    def redirect(self, path: str, **query: Any) -> Response:
        """303 to another portal page (after a POST, so a reload never repeats it)."""
        return self.finish(RedirectResponse(self.url(path, **query), status_code=303))

    async def flash(self, kind: str, key: str, **values: Any) -> None:
        """A message for the next page (in the page's language)."""
        if self.session:
            await self.parts.store.push_flash(self.session, kind, self._(key, **values))
            self.flash_pushed = True

    # -- forms ----------------------------------------------------------------------------------------

    async def form(self) -> FormData:
        """The posted form, refused (403) unless it carries this session's CSRF token and comes from here."""
        if self.session is None:
            raise NeedsSignIn(self.settings.root_path + "/")
        origin = self.request.headers.get("origin")
        if origin and origin != "null" and origin not in self._own_origins():
            raise Refused("refused_origin")
        data = await self.request.form()
        sent = data.get("csrf_token")
        if not isinstance(sent, str) or not secrets.compare_digest(sent, self.session.csrf_token):
            raise Refused("refused_csrf")
        return data

    def _own_origins(self) -> set[str]:
        own = {self.settings.public_origin}
        host = self.request.headers.get("host")
        if host:
            own.add(f"{self.request.url.scheme}://{host}")
        return own


async def page(request: Request) -> Page:
    """The page context of any request (anonymous or signed in)."""
    parts: Parts = request.app.state.parts
    session_id = request.cookies.get(parts.settings.cookie_name)
    fresh = SYNC_COOKIE in request.cookies
    session = await parts.store.get(session_id, fresh=fresh)
    chosen = _safe_lang(request.cookies.get(LANG_COOKIE))
    if session is not None and not fresh and chosen and chosen != session.lang:
        # The language was changed (maybe on another replica, whose note may not have arrived yet).
        session = await parts.store.get(session_id, fresh=True)
    asked = _safe_lang(request.query_params.get("lang"))
    lang = asked or (session.lang if session else None) or _safe_lang(request.cookies.get(LANG_COOKIE)) or "id"
    if asked and session is not None and session.lang != asked:
        await parts.store.set_lang(session, asked)
    client = request.client.host if request.client else None
    api = Api(parts.gateway, parts.refresher, session, client_address=client, lang=lang)
    return Page(request=request, parts=parts, session=session, lang=lang, api=api,
                set_lang_cookie=bool(asked and asked != request.cookies.get(LANG_COOKIE)), read_fresh=fresh)


PageDep = Annotated[Page, Depends(page)]


def role_page(*roles: Role) -> Callable[[Page], Awaitable[Page]]:
    """A dependency admitting signed-in people of these roles; others are sent to sign in, or refused (403)."""
    allowed = {role.value for role in roles}

    async def dependency(ctx: PageDep) -> Page:
        if ctx.session is None:
            raise NeedsSignIn(ctx.here() if ctx.request.method == "GET" else ctx.settings.root_path + "/")
        if ctx.session.person.role not in allowed:
            raise Refused("refused_role")
        return ctx

    return dependency


DonorPage = Annotated[Page, Depends(role_page(Role.DONOR))]
FacilitatorPage = Annotated[Page, Depends(role_page(Role.FACILITATOR))]
RecipientPage = Annotated[Page, Depends(role_page(Role.RECIPIENT))]
AdminPage = Annotated[Page, Depends(role_page(Role.ADMIN))]
UnitPage = Annotated[Page, Depends(role_page(Role.RECIPIENT, Role.FACILITATOR))]


def sign_in_url(root_path: str, return_to: str) -> str:
    """The portal's sign-in address with where to come back to."""
    return f"{root_path}/auth/sign-in?{urlencode({'next': return_to})}"
