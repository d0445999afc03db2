"""Exception types for bad input.

Every problem a user can cause (a wrong file, missing metadata, impossible parameters) is
raised as a subclass of :class:`HEAError` with a one-line message that names the problem and
what to do. Each also subclasses the closest built-in exception, so ``except ValueError``
still works in user code.
"""


class HEAError(Exception):
    """Base class of every error this package raises on purpose."""


class InputFileError(HEAError, FileNotFoundError):
    """The input path is missing, unreadable, or in a format nothing can read."""


class NotSpectrumImageError(HEAError, ValueError):
    """The file holds something other than an EDS spectrum image (an image, one spectrum...)."""


class MetadataError(HEAError, ValueError):
    """Beam energy, elements or calibration are missing or wrong."""


class ElementError(HEAError, ValueError):
    """An element symbol is unknown, or has no X-ray line inside the energy range."""


class DataError(HEAError, ValueError):
    """The counts themselves are unusable: empty, all zero, NaN, infinite or negative."""


class ParameterError(HEAError, ValueError):
    """A parameter value is impossible for this data (too many components, clusters...)."""


class KFactorError(HEAError, ValueError):
    """A k-factor table is unreadable or lacks an element that is being quantified."""


class OutputError(HEAError, OSError):
    """An output folder cannot be written, or would overwrite earlier results."""


class SchedulerError(HEAError, ConnectionError):
    """A dask.distributed scheduler address is malformed or the scheduler cannot be reached."""


class HEAWarning(UserWarning):
    """Base class of this package's warnings: the analysis goes on, but you should know."""


class KFactorWarning(HEAWarning):
    """A user's k-factor file lacks an element; the package's default value is used for it."""
