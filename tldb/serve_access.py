"""Who may read a `tldb serve` reachable from other machines: the holder of a secret token.

A trace database holds the model's code: FX graphs, generated kernels, source file paths and
stack frames. On loopback (the default) only local users reach the server. On any other
address the server prints a warning and, unless `--public` is given, requires a token it
generates at start (`secrets.token_urlsafe`) and prints:

- scripts send it as `Authorization: Bearer TOKEN`;
- a browser opens `/-/tldb-login?token=TOKEN` once: Datasette's own signed `ds_actor` cookie
  (signed with Datasette's per-process secret) then carries the identity, as Datasette's
  `--root` login does.

Both are Datasette's authentication mechanisms (an `actor_from_request` hook, the signed actor
cookie); the instance is closed to anyone else with Datasette's `allow` block on
`view-instance`, which every database, table, query and SQL page checks, and the report
mounts and /-/tldb.json check it too. Tokens are compared with `hmac.compare_digest`.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket

from datasette import hookimpl

#: The actor a token holder is (what the `allow` block admits).
ACTOR = {"id": "tldb-token"}
#: Attribute of the Datasette instance holding the token (never in metadata: /-/metadata
#: would show it).
TOKEN_ATTRIBUTE = "tldb_token"
LOGIN_PATH = "/-/tldb-login"


def is_loopback(host: str) -> bool:
    """True when every address host names is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def exposure_warning(host: str) -> str:
    return (
        f"Warning: listening on {host}, reachable from other machines. The databases and "
        "reports hold your model's code (graphs, generated kernels, source paths and stack "
        "frames): serve them only on a network you trust."
    )


def protect(metadata: dict) -> None:
    """Close the instance to everyone but the token holder (Datasette's `allow` block)."""
    metadata["allow"] = dict(ACTOR)


def _token_matches(datasette, given: str) -> bool:
    token = getattr(datasette, TOKEN_ATTRIBUTE, None)
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


@hookimpl
def actor_from_request(datasette, request):
    """`Authorization: Bearer TOKEN` makes the request the token holder's."""
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and _token_matches(datasette, given.strip()):
        return dict(ACTOR)
    return None


@hookimpl
def register_routes(datasette):
    if getattr(datasette, TOKEN_ATTRIBUTE, None) is None:
        return []
    return [(rf"^{LOGIN_PATH}$", _login_view)]


async def _login_view(datasette, request):
    """A correct ?token= sets Datasette's signed actor cookie and goes to the home page."""
    from datasette.utils.asgi import Response

    if not _token_matches(datasette, request.args.get("token") or ""):
        return Response.text("403: wrong or missing token", status=403)
    response = Response.redirect("/")
    response.set_cookie("ds_actor", datasette.sign({"a": dict(ACTOR)}, "actor"), httponly=True)
    return response


async def allowed(datasette, request) -> bool:
    """Whether the request may see the instance (for tldb's own routes)."""
    return await datasette.permission_allowed(request.actor, "view-instance", default=True)
