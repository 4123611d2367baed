"""Image files in and out: reading any image a user may give (any mode, 16 bits, alpha, an ICC
profile) into the RGB tensors the engine works on and back (images.py), cutting a style image's
frame off (frames.py), and writing output files (saving.py).

May import: PIL, numpy, torch (images.py and frames.py only; saving.py stays torch-free for the
command line), and of swag_core only errors.
"""
