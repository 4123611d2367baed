"""`swag bench`: the engine's speed and memory against a plain reference implementation of the
same loss (command.py, reference.py, inputs.py), and the GPU self-check (check.py).

May import: the engine, imaging, options and errors; torch inside the command's work only.
Never the service, the command line or GIMP code.
"""
