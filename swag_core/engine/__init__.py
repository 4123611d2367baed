"""The engine: everything that computes a stylisation, and the only part that needs torch.

Data flow of one job (pipeline.py, `stylize`): images as tensors (imaging/images.py) -> the
feature extractor for the chosen network and weights (networks.py, weights.py, kept warm by
extractors.py with cache.py) -> the scales of the pyramid (scales.py) -> per scale, the SWAG
losses (smoothing.py, losses.py) minimised over the image's pixels (optimisers.py), whole or in
tiles (tiles.py), on the device and at the precision device.py sets (on the CPU, with the
steps' freed memory kept for reuse: host_memory.py) -> the result image.

May import: torch, torchvision, PIL, numpy, and of swag_core only errors, options, choices and
imaging. Never the service, the command line, research, bench or GIMP code: the engine is what
they all call (tests/test_layout.py checks it).
"""
