"""Measurements behind the paper's analyses and the quality benchmark: activation statistics of
the networks (stats.py, `swag stats`), side-by-side comparisons (compare.py, `swag compare`) and
the quality measures of a result (quality.py).

May import: the engine, imaging, options, choices and errors; torch inside the commands' work
only, so that `swag --help` stays quick. Never the service, the command line or GIMP code.
"""
