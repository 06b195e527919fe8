"""The one exception type for problems with user input (files, options, data)."""


class ReproError(ValueError):
    """A problem with input that the user can fix; the CLI prints it as one line, exit 2."""


def reason(exc: BaseException) -> str:
    """Why ``exc`` happened, for a one-line message: its type and the first sentence of its
    text (an OSError's text without the path, which the message names already)."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    first = text.strip().split("\n")[0].split(". ")[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
