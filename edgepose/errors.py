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


class SourceLost(InputError):
    """A live source (camera, stream) that ended, failed or stalled after it opened. The
    command exits with ``exit_code`` (3) so a service manager or script can tell it from
    bad input (1) and start it again."""

    exit_code = 3
