"""The root of every error the product raises on purpose.

Each package derives its own family from `PspError`; the command line turns any of them into a
one-line message and a non-zero exit, and nothing else in the code exits.
"""


class PspError(Exception):
    """Something the user can act on; the message says what."""


class ConfigError(PspError):
    """The configuration file is missing a value, has an unknown key or a value of the wrong type."""


class DatabaseError(PspError):
    """The database cannot be reached or has not been initialised."""
