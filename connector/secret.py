"""A wrapper that keeps secrets out of reprs, logs, errors and state files."""

from __future__ import annotations

__all__ = ["WITHHELD", "Secret"]


class Secret:
    """Holds a secret string; ``str``/``repr``/``format`` are masked. Call ``reveal()`` where it must be sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The plain value; only for building the token request."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __format__(self, spec: str) -> str:
        return str(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Secret values cannot be pickled")

    @property
    def withheld(self) -> bool:
        """Whether this is the stand-in a pickled ``Config`` carries instead of the secret (see ``WITHHELD``)."""
        return False


class _Withheld(Secret):
    """The stand-in for a secret that was not pickled: masked like any secret, and it has nothing to reveal."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("")

    def reveal(self) -> str:
        raise ValueError(
            "The client secret was withheld when this configuration was pickled; in the worker, call "
            "config.with_secret(...) with it before use."
        )

    @property
    def withheld(self) -> bool:
        return True

    def __reduce__(self) -> tuple[object, ...]:
        return (_withheld, ())


def _withheld() -> Secret:
    return WITHHELD


WITHHELD: Secret = _Withheld()
"""What a pickled ``Config`` holds instead of its secret: pickling never copies the secret into another process's
memory, a file or a queue; the receiving side gives it back with ``Config.with_secret``."""
