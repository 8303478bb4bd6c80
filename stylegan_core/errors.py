"""Exceptions for bad user input; the CLI turns each into one line on stderr and exit status 2."""


class InputError(ValueError):
    """A file, argument or data problem the user can fix; the message says what and where."""


class CheckpointError(InputError):
    """A checkpoint is missing, truncated, foreign, of another version or does not fit its config."""


class DatasetError(InputError):
    """A dataset path is missing, empty, unreadable or not an image folder / zip."""


class OutputError(InputError):
    """A result cannot be written: a read-only or full file system, a folder where a file goes, no permission."""
