"""What a trained model is used for: generate, style mixing, projection, video, figures, latent edits,
and the provenance (precision, version, checkpoint, sampling options) written with every output.

Imports flow one way: cli -> play -> nn, data and the small shared modules.
"""
