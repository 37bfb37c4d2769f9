"""Errors with messages that name the file, tensor or argument and what was expected."""


class GptOssError(ValueError):
    """Base class: every error this package raises on bad input derives from it."""


class ConfigError(GptOssError):
    """A config value is invalid or inconsistent (names the field and the expected value)."""


class CheckpointError(GptOssError):
    """A checkpoint file, index or tensor is missing, truncated, mis-shaped or of the wrong dtype."""


class InputError(GptOssError):
    """A call argument (tokens, positions, sampling parameters) is out of range."""


def check_integer(flag, value, low):
    """A command line's integer `flag` (its `value` already an int, by argparse) is at least `low`, else an
    InputError naming it: the one check every verb's integer flags share (NumPy and torch sides alike)."""
    if value < low:
        raise InputError(f"{flag} {value}: expected an integer >= {low}")
