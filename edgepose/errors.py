"""Exceptions users can catch. Each message says what went wrong and what to do."""


class EdgeposeError(Exception):
    """Base class of every error edgepose raises on purpose."""


class InputError(EdgeposeError, ValueError):
    """A frame, image, video, camera or folder that cannot be used."""


class ModelError(EdgeposeError):
    """A model file that is missing, corrupt, or not the model the pipeline expects."""


class BackendError(EdgeposeError):
    """No inference engine could be loaded, or a delegate failed."""


class UsageError(EdgeposeError, RuntimeError):
    """An object used in a way it cannot be: a closed Pipeline, or one Pipeline from two
    threads at once."""
