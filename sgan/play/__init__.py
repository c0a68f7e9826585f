"""What a trained model is used for: generate, style mixing, projection, video, figures, latent edits.

Imports flow one way: cli -> play -> nn, data and the small shared modules.
"""
