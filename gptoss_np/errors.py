"""Errors with messages that name the file, tensor or argument and what was expected."""


class GptOssError(ValueError):
    """Base class: every error this package raises on bad input derives from it."""


class ConfigError(GptOssError):
    """A config value is invalid or inconsistent (names the field and the expected value)."""


class CheckpointError(GptOssError):
    """A checkpoint file, index or tensor is missing, truncated, mis-shaped or of the wrong dtype."""


class InputError(GptOssError):
    """A call argument (tokens, positions, sampling parameters) is out of range."""
