"""The names every choice-valued setting accepts, without the code behind them.

Validation (options.py), the command line's `--help` and the service's checks need only the
names, and importing the engine for them would load torch. The engine builds what each name
stands for (engine/networks.py, engine/smoothing.py, engine/losses.py) and checks at import
that it builds exactly these.
"""

# engine/networks.py: ARCHITECTURES, in the order shown to users.
ARCHITECTURE_NAMES = ("vgg16", "vgg19", "resnet50", "resnet101", "wide_resnet50_2", "inception_v3",
                      "noresnet50", "pseudo_vgg", "pseudo_resvgg")
# The ones torchvision has ImageNet weights for (`swag download-weights`).
PRETRAINED_ARCHITECTURES = ("vgg16", "vgg19", "resnet50", "resnet101", "wide_resnet50_2", "inception_v3",
                            "noresnet50")
POOLINGS = ("avg", "max")

# engine/smoothing.py
MODES = ("softmax", "shift", "channel", "none")
LAYER_CHOICES = ("all", "deep")

# engine/losses.py
STYLE_STATS = ("gram", "meancov", "sliced")
LAYER_WEIGHTS = ("equal", "shallow")
SCALINGS = ("normalised", "paper")
TEMPERATURE_UNITS = ("spread", "raw")

# engine/device.py
DEVICES = ("auto", "cpu", "cuda", "mps", "gpu")
PRECISIONS = ("auto", "fp32", "bf16")  # bf16: CUDA, or a CPU with bf16 instructions

# engine/optimise.py and engine/pipeline.py
OPTIMIZERS = ("adam", "lbfgs")
INITS = ("content", "noise")

# engine/weights.py: the weights that are not a file.
RANDOM = "random"
IMAGENET = "imagenet"
