"""Named errors. The CLI turns each into one line on stderr and a non-zero exit."""


class TldbError(Exception):
    """Base class: a problem the user can act on, reported without a traceback."""


class InputError(TldbError):
    """The input path is missing, unreadable or of the wrong kind."""


class OutputExistsError(TldbError):
    """The output folder exists and --overwrite was not given."""


class SchemaVersionError(TldbError):
    """A database was written by an incompatible tldb version (rebuild it from the log)."""


class IncompleteDatabaseError(TldbError):
    """A database whose load never finished (killed or failed); it must be rebuilt."""


class StrictError(TldbError):
    """--strict or --strict-compile-id found problems in the log."""
