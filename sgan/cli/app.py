"""The root Typer app: `--version`, `--debug`, and one-line errors instead of tracebacks.

Commands live in one module each (sgan/cli/<command>.py) and attach themselves to `app`;
sgan/cli/__init__.py imports them all.
"""

from __future__ import annotations

import os
import sys


import typer
from typer.core import TyperGroup

try:  # typer vendors click from 0.2x on; before, it depends on click itself
    from typer._click import ClickException
except ImportError:  # pragma: no cover - older typer
    from click import ClickException

from sgan.errors import SganError

_DEBUG_ENV = "SGAN_DEBUG"


def debug_enabled() -> bool:
    return os.environ.get(_DEBUG_ENV, "") not in ("", "0")


def print_error(message: str) -> None:
    """Print `Error: message` as one line on stderr (newlines folded)."""
    line = " ".join(str(message).split())
    typer.echo(f"Error: {line}", err=True)


class SganGroup(TyperGroup):
    """Runs a command and turns sgan's errors, and Click's usage errors (a bad option value, an
    unknown option, a missing argument), into one line on stderr and an exit code."""

    def main(self, *args, **kwargs):
        standalone = kwargs.pop("standalone_mode", True)
        if not standalone:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except ClickException as err:
            if debug_enabled():
                raise
            if not err.format_message().strip():  # `sgan` alone: the help is already shown
                sys.exit(err.exit_code)
            command = err.ctx.command_path if getattr(err, "ctx", None) is not None else "sgan"
            print_error(f"{err.format_message().rstrip('.')}; see `{command} --help`.")
            sys.exit(err.exit_code)
        except typer.Abort:
            print_error("aborted.")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except SganError as err:
            if debug_enabled():
                raise
            print_error(str(err))
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            if debug_enabled():
                raise
            print_error("interrupted.")
            raise typer.Exit(130) from None
        except Exception as err:  # noqa: BLE001 - out-of-memory only; anything else is re-raised
            if debug_enabled() or not _is_out_of_memory(err):
                raise
            print_error(f"out of memory; {oom_hint(ctx.invoked_subcommand)}.")
            raise typer.Exit(1) from None


# What lowers the memory a command needs, by command (`sgan NAME ...`).
OOM_HINTS = {
    "prepare-dataset": "use fewer --workers or a smaller --max-size",
    "train": "use a smaller --batch, or --precision bf16 on a GPU",
    "generate": "use a smaller --batch",
    "metrics": "use a smaller --batch (it does not change the result)",
    "video": "use a smaller --batch or --scale",
    "project": "use --device cpu or a smaller model",
    "figure": "use fewer --seeds or a smaller --scale",
    "edit": "use fewer --seeds or a smaller --scale",
    "mix": "use fewer --rows/--cols",
    "detector": "use a smaller --batch",
    "directions": "use a smaller --batch",
}


def oom_hint(command: str | None) -> str:
    return OOM_HINTS.get(command or "", "close other programs or use --device cpu")


def _is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, MemoryError):
        return True
    oom = getattr(sys.modules.get("torch"), "OutOfMemoryError", None)
    if oom is not None and isinstance(err, oom):
        return True
    return isinstance(err, RuntimeError) and ("out of memory" in str(err).lower()
                                              or "can't allocate memory" in str(err).lower())


app = typer.Typer(
    name="sgan",
    cls=SganGroup,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help=(
        "sgan: a StyleGAN toolkit. Prepare a dataset, train, measure, generate, mix, project and animate.\n\n"
        "Example: sgan prepare-dataset builtin:shapes data/shapes.lmdb --max-size 32 && "
        "sgan generate runs/shapes --seeds 0-15 --grid --outdir out"
    ),
)


def version_text() -> str:
    import torch

    from sgan import __version__
    from sgan.device import describe_device, resolve_device

    cuda = torch.version.cuda or "none"
    return f"sgan {__version__} (torch {torch.__version__}, cuda {cuda}, device {describe_device(resolve_device('auto'))})"


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", help="Print sgan, torch and device versions and exit.",
                                 callback=_version_callback, is_eager=True),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
) -> None:
    """sgan: a StyleGAN toolkit (StyleGAN 1 with progressive growing, pure PyTorch)."""
    if debug:
        os.environ[_DEBUG_ENV] = "1"


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="sgan")
    except SganError as err:  # raised outside a command, e.g. while importing options
        print_error(str(err))
        sys.exit(err.exit_code)
