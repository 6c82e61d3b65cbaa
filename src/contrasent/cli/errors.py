"""The exception a subcommand raises for a user error (see :mod:`contrasent.cli` for the convention)."""


class CommandError(Exception):
    """A user error: the command line asks for something that cannot be done as asked. Printed as
    ``contrasent <command>: error: <message>``, exit status 2 (argparse's status for a bad command line)."""
