"""`sgan explore`: a local web page that renders a model live (sgan.play.explore)."""

from __future__ import annotations

import signal

from pathlib import Path
from typing import Optional

import typer

from sgan.cli._common import PRECISION_DEFAULT, PRECISION_HELP, check_out_dir, console, pick_precision
from sgan.cli.app import app
from sgan.errors import UsageError

EPILOG = """[b]Examples[/b]

  sgan explore runs/shapes
  sgan explore model.pt --directions dirs.npz --out saved
  sgan explore sg3.pt --port 8765 --device cpu
  sgan explore runs/shapes --host 0.0.0.0   (reachable from other machines: prints a warning)

Prints a URL such as http://127.0.0.1:40213/?token=... (open it in a browser; a request without the token is
refused with 403, so other users of the machine cannot drive the model). The page sets the seed (typed,
stepped, random), truncation psi and cutoff, class, noise mode, style mixing with a second seed, the
directions of --directions as sliders and a StyleGAN3 model's translation and rotation. "save" writes
seedNNNN.png (provenance in its text chunks), its W+ latent seedNNNN.npy with the seedNNNN.json sidecar, and
seedNNNN.txt (the command line that reproduces it) into --out. Ctrl-C stops the server.
"""


@app.command("explore", epilog=EPILOG)
def explore_command(
    ckpt: Path = typer.Argument(..., metavar="CKPT", help="A snapshot file or a training run folder (its latest snapshot)."),
    directions: Optional[Path] = typer.Option(None, "--directions", help="A dirs.npz (sgan directions) whose directions become sliders."),
    out: Path = typer.Option(Path("explore"), "--out", help="Folder that \"save\" writes into (created on the first save)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Anything but 127.0.0.1/localhost lets other machines reach the page (the token still guards it)."),
    port: int = typer.Option(0, "--port", help="Port to listen on; 0 (the default) picks a free one."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option(PRECISION_DEFAULT, "--precision", help=PRECISION_HELP),
) -> None:
    """Explore a model in the browser: seed, truncation, mixing and directions, rendered live."""
    from sgan.device import check_precision, configure_cuda, resolve_device
    from sgan.play.explore.render import Explorer
    from sgan.play.explore.server import ExploreApp, make_server

    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be within 0-65535 (0 picks a free port), got {port}.")
    check_out_dir(out, "--out")
    dev = resolve_device(device)
    check_precision(precision, dev)
    configure_cuda(dev)
    explorer = Explorer(ckpt, device=dev, directions=directions)
    explorer.precision = pick_precision(precision, explorer.G, dev, batch=1)
    explore_app = ExploreApp(explorer, out_dir=out, log=lambda message: console.print(message, highlight=False))
    try:
        server = make_server(explore_app, host=host, port=port)
    except OSError as err:
        reason = err.strerror or str(err)
        raise UsageError(f"cannot listen on {host}:{port} ({reason}); choose another --port (0 picks a free one) "
                         "or --host.") from None
    try:                                      # from here on Ctrl-C stops the server cleanly
        _stop_on_signals()                    # before the URL is printed: a script may signal right after it
        if host not in ("127.0.0.1", "localhost", "::1"):
            console.print(f"Warning: listening on {host}, not only this machine: anyone who can reach it and has the "
                          "URL below can drive the model and write into --out.", style="yellow", highlight=False,
                          soft_wrap=True)
        info = explorer.info()
        extra = f", {len(explorer.directions)} directions" if explorer.directions else ""
        console.print(f"Exploring {ckpt} ({info['arch']}, {info['resolution']} px{extra}) on {dev}; saves go to {out}/",
                      highlight=False, soft_wrap=True)
        typer.echo(f"Open {server.url}")      # stdout: the one line a script may read
        console.print("Ctrl-C stops the server.", highlight=False)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        console.print("Stopped.", highlight=False)
    finally:
        server.server_close()


def _stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop the server, even where the shell started sgan with SIGINT
    ignored (a background job of a non-interactive shell inherits SIG_IGN)."""
    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
