"""The base of every error a user can cause.

Every error that a bad scenario, option, file or environment can raise subclasses
:class:`GreysimError`; its ``str()`` is the whole message the user sees (the file, the key
path and what is allowed). The command line catches ``GreysimError`` in one place and exits
with code 2; any other exception is a bug in greysim and says so.
"""


class GreysimError(Exception):
    """A user-facing error: its message names the file, the key and what is allowed."""


class OptionError(GreysimError, ValueError):
    """An argument of a call, or an option of a command, that is not allowed."""
