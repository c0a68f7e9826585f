"""`sgan explore`: a local web page that renders a model live (seed, truncation, class, noise, style
mixing, directions, StyleGAN3's input transform) through the same library code as `sgan generate`.

state.py parses and checks what the page sends; render.py holds the model and renders / saves a state;
directions.py reads a dirs.npz; server.py is the token-guarded HTTP server; static/ is the page.
"""
