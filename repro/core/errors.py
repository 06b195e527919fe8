"""The one exception type for problems with user input (files, options, data)."""


class ReproError(ValueError):
    """A problem with input that the user can fix; the CLI prints it as one line, exit 2."""
