"""Rendering the HTML pages: one Jinja2 environment (autoescape on), filters, headers.

Every value a template prints is escaped by Jinja2 unless it is :class:`markupsafe.Markup`
(the SVG charts, which escape their own text). Pages are sent with a content security
policy that lets them load only the service's own scripts, styles and forms, so even a
value that escaped escaping could neither run a script nor reach another origin.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from failwise import __version__
from failwise.service._auth import Principal, csrf_token

__all__ = [
    "NOTICES",
    "REASON_HEAD",
    "SECURITY_HEADERS",
    "label_namer",
    "page",
    "reason_parts",
    "static_file",
]

#: Headers of every page: nothing from another origin, no framing, no sniffing.
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

#: The notices a redirect may ask a page to show (by code: no text travels in the URL).
NOTICES: Mapping[str, tuple[str, str]] = {
    "resolved": ("info", "Resolved."),
    "released": ("info", "Released back to the queue."),
    "claimed": ("info", "Claimed."),
    "undone": ("info", "Undone: the item is yours again."),
    "empty": ("info", "Nothing is waiting in the queue."),
    "conflict": ("error", "Someone else changed this item first; nothing was written."),
    "refused": ("error", "That was refused; nothing was written."),
    "label": ("error", "Pick one of the labels, or out of scope."),
    "too-late": ("error", "Too late to undo: the undo window has passed, or it was not yours."),
    "bulk-done": ("info", "Bulk action applied."),
    "signed-out": ("info", "Signed out."),
    "sign-in": ("info", "Sign in to continue."),
}

_STATIC = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}


def _duration(seconds: Any) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    s = abs(float(seconds))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 172_800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} d"


def _due(seconds: Any) -> str:
    text = _duration(seconds)
    return f"overdue {text}" if float(seconds) < 0 else f"due in {text}"


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value) * 100:.1f}%"


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):,.1f}"


def _whole(value: Any) -> str:
    """A count with thousands separators: ``1,234,567``."""
    return f"{int(value):,}"


def _isotime(at: Any) -> str:
    if at is None or (isinstance(at, float) and math.isnan(at)):
        return "—"
    return datetime.fromtimestamp(float(at), UTC).strftime("%Y-%m-%d %H:%M:%S")


def _compact_json(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


#: Most characters of a reason the queue shows before the rest goes behind a disclosure
#: (about three lines of its column).
REASON_HEAD = 120


def reason_parts(reason: Any) -> tuple[str, str]:
    """A reason as (what the queue's row shows, the rest behind "more"; empty when none).

    A reason of at most :data:`REASON_HEAD` characters is shown whole. A longer one is cut
    after its first clause (at ``"; "``) when that clause is long enough to say something,
    else at the last space before the limit, so no word is cut in two.
    """
    text = str(reason)
    if len(text) <= REASON_HEAD:
        return text, ""
    clause = text.find("; ", 0, REASON_HEAD)
    if clause >= REASON_HEAD // 3:
        cut = clause + 1
    else:
        space = text.rfind(" ", REASON_HEAD // 2, REASON_HEAD)
        cut = space if space > 0 else REASON_HEAD
    return text[:cut].rstrip(), text[cut:].lstrip()


def label_namer(names: Sequence[str] | None) -> Any:
    """The ``label_name`` filter: a label id as its name (``-1``: out of scope)."""

    def name(label: Any) -> str:
        if label is None:
            return "—"
        index = int(label)
        if index < 0:
            return "out of scope"
        if names is not None and index < len(names):
            return str(names[index])
        return f"label {index}"

    return name


_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("failwise.service", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters.update(
    duration=_duration,
    due=_due,
    pct=_pct,
    number=_number,
    whole=_whole,
    isotime=_isotime,
    compact_json=_compact_json,
    reason_parts=reason_parts,
)


def page(
    request: Request,
    template: str,
    *,
    principal: Principal | None,
    title: str,
    label_names: Sequence[str] | None = None,
    status_code: int = 200,
    now: float,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` as a full page (with the notice the URL's ``n`` names)."""
    code = request.query_params.get("n")
    notice = NOTICES.get(code) if code else None
    environment = _environment.overlay()
    environment.filters["label_name"] = label_namer(label_names)
    html = environment.get_template(template).render(
        principal=principal,
        csrf=csrf_token(request) or "",
        title=title,
        page=template.split(".")[0],
        notice=None if notice is None else {"kind": notice[0], "text": notice[1]},
        asset_version=__version__,
        now=now,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=dict(SECURITY_HEADERS))


def static_file(name: str) -> Response:
    """One of the vendored files, by name (only those two exist: no path is ever read)."""
    media = _STATIC[name]
    body = resources.files("failwise.service").joinpath("static", name).read_bytes()
    headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    return Response(body, media_type=media, headers=headers)
