"""What the page and form handlers (pages.py, forms.py) use of the web UI (`WebUI` in
`gateway/operator/web/__init__.py`), declared here so that they do not import the package that
builds them: the gateway's parts, and rendering a page."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from gateway.operator.api import AdminParts
from gateway.operator.web.auth import WebSession


class WebView(Protocol):
    """The web UI as its handlers see it."""

    parts: AdminParts

    async def render(self, name: str, **context: Any) -> web.Response:
        """A template rendered off the event loop, with the pages' security headers."""

    async def page(self, request: web.Request, session: WebSession, name: str, **context: Any) -> web.Response:
        """A page for a logged-in session: its CSRF token and flash messages included."""
