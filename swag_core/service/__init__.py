"""The local HTTP service the GIMP plug-in talks to (`swag serve`): the server and its checks
(server.py, docs/openapi.json), the queue that runs one job at a time on the engine (jobs.py), and
the result images as PNG for the client (wire.py).

May import: the standard library and PIL at module level; numpy and the engine only where a job
runs (jobs.py), so that `swag serve --help` does not load torch. Never the command line beyond
the parser it adds its command to, research, bench or GIMP code.
"""
