"""The explorer's HTTP server: standard library only (ThreadingHTTPServer), bound to 127.0.0.1 by default.

Every request must carry the server's one-time token (as Jupyter does): `?token=T` in the URL, the
`X-Sgan-Token` header, or the cookie the page gets on its first load; anything else is 403. Routes:

    GET  /                  the page (static/index.html)       GET /static/NAME   its script and style
    GET  /api/model         the model's facts (classes, style groups, directions, defaults)
    POST /api/render        {"client": ID, "request": N, "state": {...}} -> {"image": data URL, "ms": ...}
    POST /api/save          {"state": {...}} -> {"files": [...], "command": ...}

Only the newest render request of a client renders: one whose number is below the newest seen from
that client gets 409 at once, and one that a newer request overtook while it waited for the model
gets 409 without rendering. Bad input is a 4xx with {"error": sentence}; no request stops the server.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import socket
import threading
import time
from collections import OrderedDict
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from sgan.errors import SganError
from sgan.play.explore.render import Explorer
from sgan.play.explore.state import parse_state
from sgan.errors import UsageError

TOKEN_HEADER = "X-Sgan-Token"
COOKIE = "sgan_explore_token"
MAX_BODY = 64 * 1024
MAX_CLIENTS = 256
STATIC = {"index.html": "text/html; charset=utf-8", "explore.js": "text/javascript; charset=utf-8",
          "explore.css": "text/css; charset=utf-8"}


class Superseded(Exception):
    """A newer request of the same client came first."""


class ExploreApp:
    """What the handlers share: the explorer, the token, the output folder, and who is newest."""

    def __init__(self, explorer: Explorer, *, out_dir: str | Path, token: str | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.explorer, self.out_dir = explorer, Path(out_dir)
        self.token = token or secrets.token_urlsafe(24)
        self.render_lock = threading.Lock()            # one rendering at a time (the model is shared)
        self._newest: OrderedDict[str, int] = OrderedDict()
        self._newest_lock = threading.Lock()
        self.log = log or (lambda message: None)
        self.counts = {"rendered": 0, "superseded": 0, "saved": 0}

    def authorised(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.token.encode())

    def claim(self, client: str, request: int) -> None:
        """Note `request` as the client's newest; Superseded if a newer one was seen."""
        with self._newest_lock:
            newest = self._newest.get(client)
            if newest is not None and request < newest:
                raise Superseded
            self._newest[client] = request
            self._newest.move_to_end(client)
            while len(self._newest) > MAX_CLIENTS:
                self._newest.popitem(last=False)

    def is_newest(self, client: str, request: int) -> bool:
        with self._newest_lock:
            return self._newest.get(client) == request

    def render(self, payload: dict) -> dict[str, Any]:
        client, request = _client_request(payload)
        state = parse_state(_state_of(payload), self.explorer.facts, defaults=self.explorer.defaults)
        self.claim(client, request)
        with self.render_lock:
            if not self.is_newest(client, request):          # overtaken while waiting: not rendered
                self.counts["superseded"] += 1
                raise Superseded
            frame = self.explorer.render(state)
            self.counts["rendered"] += 1
        png = self.explorer.png(frame)
        command, note = self.explorer.command(state, self.out_dir)
        return {"request": request, "image": "data:image/png;base64," + base64.b64encode(png).decode(),
                "ms": round(frame.ms, 1), "command": command, "note": note, "state": state.to_dict()}

    def save(self, payload: dict) -> dict[str, Any]:
        state = parse_state(_state_of(payload), self.explorer.facts, defaults=self.explorer.defaults)
        with self.render_lock:
            result = self.explorer.save(state, self.out_dir)
            self.counts["saved"] += 1
        self.log(f"saved {', '.join(Path(f).name for f in result['files'])} in {self.out_dir}")
        return result


def _state_of(payload: dict) -> Any:
    return payload.get("state", {})


def _client_request(payload: dict) -> tuple[str, int]:

    client, request = payload.get("client", ""), payload.get("request", 0)
    if not isinstance(client, str) or len(client) > 64:
        raise UsageError("client must be a short string naming the page that asks.")
    if isinstance(request, bool) or not isinstance(request, int) or request < 0:
        raise UsageError("request must be a whole number counting up from 0.")
    return client, request


class Handler(BaseHTTPRequestHandler):
    server_version = "sgan-explore"
    protocol_version = "HTTP/1.1"
    app: ExploreApp               # set on the subclass made by make_server

    # ----- plumbing --------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:   # noqa: A002 - the base class's name
        pass

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except ConnectionError:                 # the page aborted this request (a newer one replaced it)
            self.close_connection = True

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message, "status": status})

    def _token(self) -> str | None:
        query = parse_qs(urlsplit(self.path).query)
        if query.get("token"):
            return query["token"][0]
        if self.headers.get(TOKEN_HEADER):
            return self.headers[TOKEN_HEADER]
        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("Cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is simply no token
            return None
        return cookie[COOKIE].value if COOKIE in cookie else None

    def _guard(self) -> bool:
        if self.app.authorised(self._token()):
            return True
        self._error(403, "this explorer needs its token: open the URL with ?token=... that `sgan explore` printed.")
        return False

    def _body(self) -> dict | None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._error(411, "the request needs a Content-Length header.")
            return None
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._error(413, f"the request body is larger than {MAX_BODY} bytes.")
            return None
        raw = self.rfile.read(length)
        if "json" not in self.headers.get("Content-Type", ""):
            self._error(415, "send the settings as JSON (Content-Type: application/json).")
            return None
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            self._error(400, f"the request is not valid JSON ({err}).")
            return None
        if not isinstance(payload, dict):
            self._error(400, "the request must be a JSON object.")
            return None
        return payload

    # ----- routes ----------------------------------------------------------------------------------
    def do_HEAD(self) -> None:  # noqa: N802 - http.server's names
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        if not self._guard():
            return
        path = urlsplit(self.path).path
        try:
            if path in ("/", "/index.html"):
                body = _static("index.html")
                cookie = f"{COOKIE}={self.app.token}; Path=/; HttpOnly; SameSite=Strict"
                self._send(200, body, STATIC["index.html"], {"Set-Cookie": cookie})
            elif path.startswith("/static/") and path[len("/static/"):] in STATIC:
                name = path[len("/static/"):]
                self._send(200, _static(name), STATIC[name])
            elif path == "/api/model":
                self._json(200, self.app.explorer.info())
            else:
                self._error(404, f"no page {path}; open / with the token.")
        except Exception as err:  # noqa: BLE001 - a bug in one request must not stop the server
            self._error(500, f"the server failed on this request ({type(err).__name__}: {err}).")

    def do_POST(self) -> None:  # noqa: N802
        if not self._guard():
            return
        path = urlsplit(self.path).path
        if path not in ("/api/render", "/api/save"):
            self._error(404, f"no action {path}.")
            return
        payload = self._body()
        if payload is None:
            return
        try:
            if path == "/api/render":
                self._json(200, self.app.render(payload))
            else:
                self._json(200, self.app.save(payload))
        except ConnectionError:
            self.close_connection = True
        except Superseded:
            self._json(409, {"superseded": True, "error": "a newer request replaced this one.", "status": 409})
        except SganError as err:
            self._error(400, " ".join(str(err).split()))
        except Exception as err:  # noqa: BLE001 - a bug in one request must not stop the server
            self._error(500, f"the server failed on this request ({type(err).__name__}: {err}).")

    def do_PUT(self) -> None:  # noqa: N802
        if self._guard():
            self._error(405, "use GET or POST.")

    do_DELETE = do_PATCH = do_PUT


def _static(name: str) -> bytes:
    return resources.files("sgan.play.explore").joinpath("static", name).read_bytes()


class ExploreServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: ExploreApp) -> None:
        handler = type("BoundHandler", (Handler,), {"app": app})
        if ":" in str(address[0]):
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)
        self.app = app

    def handle_error(self, request, client_address) -> None:
        """A page that went away mid-answer is normal (aborted requests); anything else is reported."""
        import sys
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/?token={self.app.token}"


def make_server(app: ExploreApp, *, host: str = "127.0.0.1", port: int = 0) -> ExploreServer:
    """Bind (port 0: a free one); OSError where the port is taken or the host unknown."""
    return ExploreServer((host, port), app)


def serve_in_thread(server: ExploreServer) -> threading.Thread:
    """Serve from a daemon thread (tests, notebooks); stop with server.shutdown()."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    time.sleep(0)
    return thread
