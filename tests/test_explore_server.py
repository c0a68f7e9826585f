"""sgan explore's server, driven with urllib against a server in a thread: the token, the page, rendering,
a newer request superseding an older one, saving, and bad requests that get a 4xx and leave it running."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explore_helpers import allow_loopback, cond_model, sg2_model
from sgan.play.explore.render import Explorer
from sgan.play.explore.server import COOKIE, TOKEN_HEADER, ExploreApp, make_server, serve_in_thread
from sgan.play.explore.state import parse_state


@pytest.fixture(autouse=True)
def _loopback(monkeypatch):
    allow_loopback(monkeypatch)


@pytest.fixture
def served(tmp_path):
    """(app, base URL without token) of a server on a free port, stopped after the test."""
    app = ExploreApp(Explorer(sg2_model(tmp_path)), out_dir=tmp_path / "out")
    server = make_server(app)
    serve_in_thread(server)
    yield app, server.url.split("?")[0]
    server.shutdown()
    server.server_close()


def call(url: str, *, data=None, headers=None, method=None, raw: bytes | None = None):
    """(status, headers, body bytes) of a request; errors are answers too."""
    body = raw if raw is not None else (None if data is None else json.dumps(data).encode())
    hdrs = {"Content-Type": "application/json"} if body is not None else {}
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=body, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def api(app, base, path, data=None, **kw):
    return call(f"{base}{path}?token={app.token}", data=data, **kw)


def decode(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def test_every_request_needs_the_token(served):
    app, base = served
    for path, data in (("", None), ("api/model", None), ("static/explore.js", None), ("api/render", {"state": {}}),
                       ("api/save", {"state": {}}), ("nowhere", None)):
        for suffix in ("", "?token=wrong", f"?token={app.token[:-1]}"):
            status, _, body = call(base + path + suffix, data=data)
            assert status == 403 and b"token" in body, (path, suffix, status)
    assert app.counts == {"rendered": 0, "superseded": 0, "saved": 0}
    assert not (Path(app.out_dir)).exists()


def test_the_page_its_cookie_and_its_files(served):
    app, base = served
    status, headers, page = call(f"{base}?token={app.token}")
    assert status == 200 and b'id="image"' in page and headers["Content-Type"].startswith("text/html")
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}={app.token}") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    for name in ("explore.js", "explore.css"):          # the cookie alone, or the header alone, is enough
        s1, _, by_cookie = call(f"{base}static/{name}", headers={"Cookie": f"{COOKIE}={app.token}"})
        s2, _, by_header = call(f"{base}static/{name}", headers={TOKEN_HEADER: app.token})
        assert s1 == s2 == 200 and by_cookie == by_header and len(by_cookie) > 500
    for text in (page, call(f"{base}static/explore.js?token={app.token}")[2], call(f"{base}static/explore.css?token={app.token}")[2]):
        assert not re.search(rb"(src|href)=\"?(https?:)?//|https?://|@import", text)   # no CDN: works offline
    status, _, body = api(app, base, "api/model")
    info = json.loads(body)
    assert status == 200 and info["num_ws"] == 6 and info["style_groups"]["coarse"] == [0, 1]
    assert api(app, base, "static/../render.py")[0] == 404


def test_render_returns_the_explorer_image(served):
    app, base = served
    status, _, body = api(app, base, "api/render", {"client": "c", "request": 1, "state": {"seed": 3, "truncation_psi": 0.5}})
    answer = json.loads(body)
    assert status == 200 and answer["request"] == 1 and answer["ms"] > 0 and answer["command"].startswith("sgan generate")
    expected = app.explorer.render(parse_state({"seed": 3, "truncation_psi": 0.5}, app.explorer.facts,
                                               defaults=app.explorer.defaults)).image
    np.testing.assert_array_equal(decode(answer["image"]), expected)
    other = json.loads(api(app, base, "api/render", {"client": "c", "request": 2, "state": {"seed": 4}})[2])
    assert not np.array_equal(decode(other["image"]), expected)


def test_a_newer_request_supersedes_one_in_flight(served):
    """Request 1 waits for the model (held here), request 2 arrives: 1 answers 409 without rendering, 2 renders;
    a request numbered below the newest seen is refused at once. Other clients are not affected."""
    app, base = served
    answers = {}

    def send(number, client="page"):
        answers[(client, number)] = api(app, base, "api/render", {"client": client, "request": number, "state": {"seed": number}})

    with app.render_lock:
        first = threading.Thread(target=send, args=(1,))
        first.start()
        deadline = time.monotonic() + 30
        while app._newest.get("page") != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        second = threading.Thread(target=send, args=(2,))
        second.start()
        while app._newest.get("page") != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        other = threading.Thread(target=send, args=(1, "other-page"))
        other.start()
        while app._newest.get("other-page") != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    for t in (first, second, other):
        t.join(60)
    assert answers[("page", 1)][0] == 409 and json.loads(answers[("page", 1)][2])["superseded"] is True
    assert answers[("page", 2)][0] == 200 and json.loads(answers[("page", 2)][2])["request"] == 2
    assert answers[("other-page", 1)][0] == 200
    assert app.counts["rendered"] == 2 and app.counts["superseded"] == 1
    stale = api(app, base, "api/render", {"client": "page", "request": 1, "state": {"seed": 1}})
    assert stale[0] == 409 and app.counts["rendered"] == 2


def test_save_writes_png_latent_sidecar_and_command(served):
    app, base = served
    status, _, body = api(app, base, "api/save", {"state": {"seed": 12, "mix_seed": 3, "mix_styles": "coarse"}})
    answer = json.loads(body)
    assert status == 200 and len(answer["files"]) == 4
    png, npy, sidecar, txt = (Path(f) for f in answer["files"])
    assert png.parent == Path(app.out_dir) and all(p.is_file() for p in (png, npy, sidecar, txt))
    assert Image.open(png).text["command"] == "explore" and np.load(npy).shape == (6, 32)
    assert txt.read_text().startswith("sgan mix ")


@pytest.mark.parametrize("case", ["malformed json", "not an object", "seed out of range", "unknown setting",
                                  "no content type", "too large", "no such action", "bad request number",
                                  "put", "bad seed type"])
def test_bad_requests_get_a_4xx_message_and_the_server_keeps_serving(served, case):
    app, base = served
    url = f"{base}api/render?token={app.token}"
    requests = {
        "malformed json": dict(raw=b"{seed: 1"),
        "not an object": dict(raw=b"[1, 2]"),
        "seed out of range": dict(data={"state": {"seed": 2 ** 40}}),
        "unknown setting": dict(data={"state": {"sead": 1}}),
        "no content type": dict(raw=b'{"state": {}}', headers={"Content-Type": "text/plain"}),
        "too large": dict(raw=b" " * (70 * 1024)),
        "no such action": dict(data={}, url=f"{base}api/explode?token={app.token}"),
        "bad request number": dict(data={"client": "x", "request": -3, "state": {}}),
        "put": dict(data={}, method="PUT"),
        "bad seed type": dict(data={"state": {"seed": [1]}}),
    }[case]
    status, headers, body = call(requests.pop("url", url), **requests)
    assert 400 <= status < 500, (status, body)
    message = json.loads(body)["error"]
    assert message and len(message.splitlines()) == 1
    if case == "seed out of range":
        assert "out of range" in message
    ok = api(app, base, "api/render", {"client": "after", "request": 0, "state": {"seed": 1}})
    assert ok[0] == 200


def test_unknown_class_is_a_400(tmp_path):
    app = ExploreApp(Explorer(cond_model(tmp_path)), out_dir=tmp_path / "out")
    server = make_server(app)
    serve_in_thread(server)
    try:
        base = server.url.split("?")[0]
        status, _, body = api(app, base, "api/render", {"state": {"seed": 1, "class": "hexagon"}})
        assert status == 400 and "not a class of this model" in json.loads(body)["error"]
        assert api(app, base, "api/render", {"state": {"seed": 1, "class": "star"}})[0] == 200
    finally:
        server.shutdown()
        server.server_close()


def test_cli_prints_a_token_url_serves_it_and_stops_on_ctrl_c(tmp_path):
    ckpt = sg2_model(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sgan", "explore", str(ckpt), "--device", "cpu", "--out", str(tmp_path / "o")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        match = re.match(r"Open (http://127\.0\.0\.1:(\d+)/\?token=([\w-]{20,}))$", line.strip())
        assert match, line + proc.stderr.read() if proc.poll() is not None else line
        assert call(match.group(1))[0] == 200
        assert call(match.group(1).split("?")[0])[0] == 403
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Stopped." in err and "Traceback" not in err


def test_cli_warns_when_listening_beyond_this_machine(tmp_path):
    ckpt = sg2_model(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sgan", "explore", str(ckpt), "--device", "cpu", "--host", "0.0.0.0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Open http://0.0.0.0:")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Warning: listening on 0.0.0.0" in err and proc.returncode == 0


def test_a_page_that_hangs_up_mid_request_is_quiet_and_the_server_goes_on(served, capsys):
    """The page aborts superseded requests: the connection closes before the answer is written."""
    import socket as socket_module

    app, base = served
    host, port = base.split("//")[1].rstrip("/").split(":")
    body = json.dumps({"client": "gone", "request": 1, "state": {"seed": 1}}).encode()
    with app.render_lock:
        for _ in range(3):
            sock = socket_module.create_connection((host, int(port)))
            sock.sendall(b"POST /api/render?token=" + app.token.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            sock.setsockopt(socket_module.SOL_SOCKET, socket_module.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()                                    # hang up with a reset, before the answer
        time.sleep(0.2)
    deadline = time.monotonic() + 30
    while app.counts["rendered"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api(app, base, "api/render", {"client": "next", "request": 0, "state": {"seed": 2}})[0] == 200
    assert "Traceback" not in capsys.readouterr().err
