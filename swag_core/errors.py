"""The two ways a stylisation ends early.

Every message is one line that says what is wrong and what to do; the command line prints it
as it is (exit status 2), the service returns it as a 400 or a failed job, the GIMP plug-in
shows it to the user.
"""


class SwagError(ValueError):
    """Bad input or an unusable option: a file that is not an image, an unknown network,
    weights that are missing or do not fit, an image too small for the network..."""


class Cancelled(Exception):
    """The caller set the cancel event; raised within one optimiser iteration."""
