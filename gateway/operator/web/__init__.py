"""The commissioning web pages, served under /ui/ by the admin app (Niagara Workbench's views).

Rendered on the server with jinja2; plain HTML forms; one small script of our own
(templates/web/live.js) refreshes the parts of a page that server-sent events name. Every page
needs a login with the admin token (gateway/operator/token.py); see web/auth.py for the cookie
and CSRF rules. Pages call the same gateway functions as the admin API and the CLI.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
from aiohttp import web

import templates
from gateway.operator.auth import LOGIN_PAGE_KEY, PUBLIC_PATHS_KEY, SESSION_CHECK_KEY
from gateway.operator.token import ensure_admin_token, read_admin_token
from gateway.operator.web.auth import (
    PREFIX,
    Sessions,
    WebSession,
    csrf_ok,
    safe_next,
    same_origin,
    set_cookie,
)
from gateway.operator.web.events import EventHub, stream

if TYPE_CHECKING:
    from gateway.operator.api import AdminParts

STATIC = {"live.js": "text/javascript", "style.css": "text/css"}
# What a browser may fetch before it has logged in (an admin guard lets these through).
PUBLIC_PATHS = ("/", PREFIX, f"{PREFIX}/login", *(f"{PREFIX}/static/{name}" for name in STATIC))


class WebUI:
    """One gateway's web pages: templates, logged-in sessions, the event hub."""

    def __init__(self, parts: AdminParts) -> None:
        self.parts = parts
        self.sessions = Sessions()
        self.hub = EventHub(parts)
        folder = Path(templates.__file__).parent / "web"
        # Lenient undefined: a field another part renames shows "-" instead of failing the page.
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder), autoescape=True,
                                      trim_blocks=True, lstrip_blocks=True)
        self.env.filters["q"] = lambda v: quote(str(v), safe="")
        self.env.filters["dash"] = lambda v: "-" if v is None or v == "" or isinstance(v, jinja2.Undefined) else v
        self.env.filters["when"] = _when
        self.static = {name: (folder / name).read_bytes() for name in STATIC}

    async def start(self) -> None:
        ensure_admin_token(self.parts.settings)  # secure by default: a token exists before any page

    async def render(self, name: str, **context: Any) -> web.Response:
        """Render off the event loop: a big site's device list takes a few hundred ms of pure
        Python (bench/web_pages.py), which must not hold up the chargers' messages."""
        template = self.env.get_template(name)
        html = await asyncio.to_thread(template.render, prefix=PREFIX, **context)
        return web.Response(text=html, content_type="text/html",
                            headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                     "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
                                     "Referrer-Policy": "same-origin"})

    async def page(self, request: web.Request, session: WebSession, name: str, **context: Any) -> web.Response:
        flash, session.flash = session.flash, []
        return await self.render(name, csrf=session.csrf, flash=flash, path=request.path, **context)

    # --- routes ------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        from gateway.operator.web import forms, pages

        async def root(request: web.Request) -> web.Response:
            raise web.HTTPFound(f"{PREFIX}/")

        app.router.add_get("/", root)
        app.router.add_get(f"{PREFIX}", root)
        app.router.add_get(f"{PREFIX}/login", self.login_page)
        app.router.add_post(f"{PREFIX}/login", self.login)
        app.router.add_post(f"{PREFIX}/logout", self.guarded(self.logout, post=True))
        app.router.add_get(f"{PREFIX}/static/{{name}}", self.static_file)
        app.router.add_get(f"{PREFIX}/events", self.guarded(lambda r, s: stream(r, self.hub)))
        for path, handler in pages.routes(self):
            app.router.add_get(PREFIX + path, self.guarded(handler))
        for path, handler in forms.routes(self):
            app.router.add_post(PREFIX + path, self.guarded(handler, post=True))
        app.on_shutdown.append(self._on_shutdown)
        # The admin guard lets the login page through and takes the session cookie as the token.
        app[PUBLIC_PATHS_KEY].update(PUBLIC_PATHS)
        app[SESSION_CHECK_KEY] = self.is_logged_in
        app[LOGIN_PAGE_KEY] = f"{PREFIX}/login"

    async def _on_shutdown(self, app: web.Application) -> None:
        self.hub.close()  # open event streams end, so the admin app stops at once

    def is_logged_in(self, request: web.Request) -> bool:
        """A browser session cookie of this gateway: what an admin guard accepts besides the token."""
        return self.sessions.get(request) is not None

    def guarded(self, handler: Any, post: bool = False) -> Any:
        """The session check (and for a POST the CSRF and origin checks) before `handler`."""
        async def run(request: web.Request) -> web.StreamResponse:
            session = self.sessions.get(request)
            if session is None:
                if post or request.path.endswith(("/events",)) or "/part/" in request.path:
                    return web.Response(status=401, text="log in first")
                raise web.HTTPFound(f"{PREFIX}/login?next={quote(request.path_qs, safe='')}")
            if post:
                form = await request.post()
                if not same_origin(request) or not csrf_ok(session, form):
                    return web.Response(status=403, text="the form is stale or from another site; reload the page")
            return await handler(request, session)
        return run

    async def static_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.static:
            raise web.HTTPNotFound()
        return web.Response(body=self.static[name], content_type=STATIC[name],
                            headers={"Cache-Control": "max-age=300"})

    async def login_page(self, request: web.Request) -> web.Response:
        return await self.render("login.html.j2", error="", next=safe_next(request.query.get("next")))

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        nxt = safe_next(str(form.get("next", "")))
        if not same_origin(request):
            return web.Response(status=403, text="cross-site login refused")
        if self.sessions.throttled():
            return await self.render("login.html.j2", error="Too many failed attempts; wait a minute.", next=nxt)
        secrets = [read_admin_token(self.parts.settings) or "", self.parts.settings.admin.password]
        sid = self.sessions.login(str(form.get("token", "")), [s for s in secrets if s])
        if sid is None:
            self.parts.history.log("admin", "WebLogin", f"failed login from {request.remote}", "warning")
            return await self.render("login.html.j2", error="That is not the admin token.", next=nxt)
        self.parts.history.log("admin", "WebLogin", f"logged in from {request.remote}")
        response = web.HTTPSeeOther(nxt)
        set_cookie(response, sid, secure=request.secure)
        raise response

    async def logout(self, request: web.Request, session: WebSession) -> web.Response:
        self.sessions.logout(request)
        response = web.HTTPSeeOther(f"{PREFIX}/login")
        response.del_cookie("gw_session", path=PREFIX)
        raise response


def _when(value: Any) -> str:
    """A stored ISO time for people: `2026-11-03 08:00:00` (UTC, as stored; '-' when none)."""
    if not value:
        return "-"
    text = str(value)
    return text[:19].replace("T", " ") if len(text) >= 19 and text[10] == "T" else text

