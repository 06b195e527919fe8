"""One registry type for every extension axis (text towers, image backbones, losses, arms)."""

from __future__ import annotations

from repro.core.errors import ReproError


class Registry(dict):
    """name -> entry, in registration order; every entry has a ``name``.

    ``register(entry)`` adds an entry (a name registered twice is an error);
    ``lookup(name)`` returns one, or raises a one-line error listing the registered names.
    """

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def register(self, entry):
        if entry.name in self:
            raise ValueError(f"{self.what} {entry.name!r} is registered already")
        self[entry.name] = entry
        return entry

    def lookup(self, name: str):
        if name not in self:
            raise ReproError(f"unknown {self.what} {name!r}; expected one of {', '.join(self)}")
        return self[name]
