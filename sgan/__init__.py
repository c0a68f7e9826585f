"""sgan: a StyleGAN toolkit in pure PyTorch.

The library is usable without the CLI::

    from sgan.checkpoint import load_generator
    G = load_generator("runs/shapes")          # a snapshot file or a training run folder
"""

__version__ = "0.1.0"
