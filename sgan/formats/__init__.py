"""Reading other tools' StyleGAN checkpoints without running their code.

`import_file(path)` opens a foreign file with a restricted unpickler (sgan.formats.safe_pickle),
detects its format and converts it to sgan networks (an `Imported`); `save_imported` writes it as
an ordinary sgan checkpoint; `open_checkpoint` / `load_generator` take an sgan checkpoint or a
foreign file (converted in memory). One module per source: tf_stylegan, tf_stylegan2, ada, rosinality_sg1,
rosinality_sg2.
"""

from sgan.formats.common import FORMAT_TITLES, ImportFormatError, Imported
from sgan.formats.registry import (FORMATS, checkpoint_in_memory, detect, import_file, load_generator, open_checkpoint,
                                   save_imported)
from sgan.formats.safe_pickle import UnsafePickleError

__all__ = ["FORMATS", "FORMAT_TITLES", "Imported", "ImportFormatError", "UnsafePickleError", "detect", "import_file",
           "save_imported", "checkpoint_in_memory", "open_checkpoint", "load_generator"]
