"""SWAG style transfer: Gatys-style optimisation over softmax-smoothed activations
(Wang, Li, Vasconcelos, "Rethinking and Improving the Robustness of Image Style Transfer",
CVPR 2021), so that residual networks with random weights stylise well.

    from swag_core import stylize
    result = stylize("photo.jpg", "painting.jpg", preset="fast")   # -> PIL.Image

The package, in the order data flows through it (docs/architecture.md):
- options.py, choices.py, errors.py: the settings of a job, their names and its errors;
- cli.py: the `swag` command;
- service/: the local HTTP service the GIMP plug-in talks to, and its job queue;
- imaging/: image files in and out;
- engine/: the computation (networks, losses, optimisers, the pipeline of `stylize`);
- research/: measurements for the paper's analyses and the quality benchmark;
- bench/: the engine's speed and memory against a plain reference.

Importing the package loads neither torch nor the engine: `stylize` and `Progress` load it on
first use, so that `swag --help` and option validation stay quick.
"""

__version__ = "0.1.0"

from .errors import Cancelled, SwagError  # noqa: E402
from .options import PRESETS, Options  # noqa: E402

__all__ = ["stylize", "Options", "PRESETS", "Progress", "SwagError", "Cancelled", "__version__"]

_FROM_THE_ENGINE = ("stylize", "Progress")


def __getattr__(name):
    if name in _FROM_THE_ENGINE:
        from .engine import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
