"""SWAG style transfer: Gatys-style optimisation over softmax-smoothed activations
(Wang, Li, Vasconcelos, "Rethinking and Improving the Robustness of Image Style Transfer",
CVPR 2021), so that residual networks with random weights stylise well.

    from swag_core import stylize
    result = stylize("photo.jpg", "painting.jpg", preset="fast")   # -> PIL.Image
"""

__version__ = "0.1.0"

from .errors import Cancelled, SwagError  # noqa: E402
from .options import PRESETS, Options  # noqa: E402
from .stylize import Progress, stylize  # noqa: E402

__all__ = ["stylize", "Options", "PRESETS", "Progress", "SwagError", "Cancelled", "__version__"]
