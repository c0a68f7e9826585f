"""sgan explore end to end in a real headless browser (Debian's chromium, driven with Playwright):
load the page, move sliders, see the image change, get a message for a bad seed, save, check the files.

Skipped when chromium or the Python package playwright is missing; `make test-browser` installs both
(apt-get chromium, pip install -e .[browser]) and runs this file. Playwright's own browser downloads are
never used: the system chromium is launched by path.

    python tests/test_explore_browser.py --screenshot docs/img/explore.png CKPT [--directions dirs.npz]
takes the screenshot of docs/explore.md.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explore_helpers import allow_loopback, sg2_model, write_directions  # noqa: E402

CHROMIUM = os.environ.get("SGAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
TIMEOUT_MS = 30_000


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    return sync_playwright


needs_browser = pytest.mark.skipif(
    CHROMIUM is None or _playwright() is None,
    reason="needs chromium and the Python package playwright (make test-browser installs both: apt-get chromium, "
           "pip install -e .[browser])")


def test_browser_present_when_required():
    """Under `make test-browser` (SGAN_REQUIRE_BROWSER=1) a missing browser fails instead of skipping."""
    if os.environ.get("SGAN_REQUIRE_BROWSER") and (CHROMIUM is None or _playwright() is None):
        pytest.fail(f"SGAN_REQUIRE_BROWSER is set but chromium ({CHROMIUM}) or playwright ({_playwright()}) is missing.")


def decode(data_url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def start(ckpt, out_dir, directions=None):
    from sgan.play.explore.render import Explorer
    from sgan.play.explore.server import ExploreApp, make_server, serve_in_thread

    app = ExploreApp(Explorer(ckpt, directions=directions), out_dir=out_dir)
    server = make_server(app)
    serve_in_thread(server)
    return app, server


def image_src(page) -> str:
    return page.get_attribute("#image", "src") or ""


def wait_new_image(page, old: str) -> str:
    page.wait_for_function("old => { const s = document.getElementById('image').src; return s.startsWith('data:') && s !== old; }",
                           arg=old, timeout=TIMEOUT_MS)
    return image_src(page)


@needs_browser
def test_page_renders_steers_reports_errors_and_saves(tmp_path, monkeypatch):
    from sgan.play.explore.state import parse_state

    allow_loopback(monkeypatch)
    ckpt = sg2_model(tmp_path)
    dirs = write_directions(tmp_path / "dirs.npz", w_dim=32, num_ws=6, layers=[0, 1, 2, 3])
    app, server = start(ckpt, tmp_path / "saved", dirs)
    try:
        with _playwright()() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            page = browser.new_page()
            assert page.goto(server.url.split("?")[0]).status == 403          # no token, no page
            page.goto(server.url)
            first = wait_new_image(page, "")
            assert page.locator("#direction-sliders input").count() == 3
            assert not page.is_visible("#class-row") and not page.is_visible("#transform")   # unconditional StyleGAN2
            assert not page.is_visible("#message")
            page.locator("#psi").fill("0.2")                                   # move a slider: the image changes
            second = wait_new_image(page, first)
            assert not np.array_equal(decode(first), decode(second))
            page.locator("#dir-1").fill(str(app.explorer.direction_range[1]))  # a direction slider
            third = wait_new_image(page, second)
            assert not np.array_equal(decode(second), decode(third))
            for value in ("0.3", "0.4", "0.5", "0.6"):                          # quick moves: the last one wins
                page.locator("#psi").fill(value)
            page.wait_for_function("() => document.getElementById('status').textContent.startsWith('rendered')",
                                   timeout=TIMEOUT_MS)
            page.wait_for_function("() => document.getElementById('psi-value').textContent === '0.60'", timeout=TIMEOUT_MS)
            page.wait_for_timeout(300)
            shown = decode(image_src(page))
            facts, defaults = app.explorer.facts, app.explorer.defaults
            want = parse_state({"seed": 0, "truncation_psi": 0.6, "truncation_cutoff": "all", "noise_mode": "const",
                                "directions": [0, app.explorer.direction_range[1], 0]}, facts, defaults=defaults)
            np.testing.assert_array_equal(shown, app.explorer.render(want).image)

            page.locator("#seed").fill("99999999999")                          # a bad seed: a message, no crash
            page.wait_for_selector("#message:not([hidden])", timeout=TIMEOUT_MS)
            assert "out of range" in page.inner_text("#message")
            page.locator("#seed").fill("5")
            page.wait_for_selector("#message[hidden]", state="attached", timeout=TIMEOUT_MS)
            page.wait_for_function("() => document.getElementById('status').textContent.startsWith('rendered')",
                                   timeout=TIMEOUT_MS)
            page.wait_for_timeout(300)
            shown = decode(image_src(page))

            page.click("#save")
            page.wait_for_function("() => document.getElementById('saved').textContent.startsWith('saved ')",
                                   timeout=TIMEOUT_MS)
            files = sorted(Path(app.out_dir).iterdir())
            assert [f.suffix for f in files] == [".json", ".npy", ".png", ".txt"]
            png = next(f for f in files if f.suffix == ".png")
            assert png.name.startswith("seed0005-")
            np.testing.assert_array_equal(np.asarray(Image.open(png)), shown)   # the saved image is the one shown
            assert Image.open(png).text["command"] == "explore"
            assert np.load(next(f for f in files if f.suffix == ".npy")).shape == (6, 32)
            assert "sgan mix" in next(f for f in files if f.suffix == ".txt").read_text()
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


def screenshot(out: Path, ckpt: str, directions: str | None) -> None:
    """The picture of docs/explore.md: the page of CKPT with a direction moved and coarse styles mixed."""
    app, server = start(ckpt, Path("out/explore"), directions)
    try:
        with _playwright()() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1180, "height": 900})
            page.goto(server.url)
            first = wait_new_image(page, "")
            page.locator("#seed").fill("11")
            page.locator("#mix-on").check()
            page.locator("#mix-seed").fill("4")
            if directions:
                page.locator("#dir-0").fill(str(app.explorer.direction_range[0] / 2))
            wait_new_image(page, first)
            page.wait_for_timeout(800)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshot", type=Path, required=True)
    parser.add_argument("ckpt")
    parser.add_argument("--directions")
    args = parser.parse_args()
    screenshot(args.screenshot, args.ckpt, args.directions)
