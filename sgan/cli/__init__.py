"""The `sgan` command line: the only package that knows Typer and rich.

Each command lives in its own module and registers itself on `app` when imported.
"""

from sgan.cli.app import app, main  # noqa: F401

# One import per command module (keep sorted); each attaches its commands to `app`.

from sgan.cli import generate  # noqa: F401,E402
from sgan.cli import mix  # noqa: F401,E402
from sgan.cli import dataset  # noqa: F401,E402
from sgan.cli import prepare  # noqa: F401,E402
from sgan.cli import train  # noqa: F401,E402
from sgan.cli import project  # noqa: F401,E402
from sgan.cli import video  # noqa: F401,E402
from sgan.cli import figure  # noqa: F401,E402
from sgan.cli import edit  # noqa: F401,E402
from sgan.cli import metrics  # noqa: F401,E402
from sgan.cli import detector  # noqa: F401,E402
from sgan.cli import import_  # noqa: F401,E402
from sgan.cli import explore  # noqa: F401,E402
from sgan.cli import directions  # noqa: F401,E402
