"""sgan: a StyleGAN toolkit in pure PyTorch.

The library is usable without the CLI::

    import sgan
    G = sgan.load_generator("runs/shapes")     # a snapshot, a run folder, an imported model or a foreign file
    img = G(z, truncation_psi=0.7, noise_mode="const")
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "load_generator":  # imported on first use, so `import sgan` stays light
        from sgan.formats import load_generator  # sgan checkpoints and foreign files

        return load_generator
    raise AttributeError(f"module 'sgan' has no attribute {name!r}")
