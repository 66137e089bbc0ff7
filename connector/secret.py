"""A wrapper that keeps secrets out of reprs, logs, errors and state files."""

from __future__ import annotations

from typing import ClassVar

__all__ = ["NOT_SET", "WITHHELD", "Secret"]


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


class _StandIn(Secret):
    """A one-of-a-kind value held where a secret is not: it equals only itself (a withheld secret is not the same
    configuration as an absent one) and unpickles as itself."""

    __slots__ = ()
    _name: ClassVar[str]

    def __init__(self) -> None:
        super().__init__("")

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return id(self)

    def __reduce__(self) -> tuple[object, ...]:
        return (_stand_in, (self._name,))


def _stand_in(name: str) -> Secret:
    return {"WITHHELD": WITHHELD, "NOT_SET": NOT_SET}[name]


class _Withheld(_StandIn):
    """The stand-in for a secret that was not pickled: masked like any secret, and it has nothing to reveal."""

    __slots__ = ()
    _name = "WITHHELD"

    def reveal(self) -> str:
        raise ValueError(
            "This secret was withheld when the configuration was pickled; in the worker, call "
            "config.with_secret(...) with it before use."
        )

    @property
    def withheld(self) -> bool:
        return True


class _NotSet(_StandIn):
    """The value of a secret parameter the chosen ``auth_method`` does not use: falsy, reveals an empty string
    (which ``register_secret`` ignores and every auth refuses), shown as empty, and nothing to withhold."""

    __slots__ = ()
    _name = "NOT_SET"

    def __repr__(self) -> str:
        return "Secret(not set)"

    def __str__(self) -> str:
        return ""


WITHHELD: Secret = _Withheld()
"""What a pickled ``Config`` holds instead of its secret: pickling never copies the secret into another process's
memory, a file or a queue; the receiving side gives it back with ``Config.with_secret``."""

NOT_SET: Secret = _NotSet()
"""What a ``Config`` holds for a secret parameter its ``auth_method`` does not use (``client_secret`` with API 1.0
keys; ``app_key`` and ``secret_key`` with OAuth 2.0)."""
