"""How a source value declares itself: its name, what REVIEW.md says of it, what it reads and how it is computed.

A field table row says ``{ocsf: user, from: subject_user}``. ``subject_user`` is one ``Source``, registered in the
``SourceKind`` of the records the table maps (audit records, directory users, membership changes). From the
declaration alone the tables loader (``mapping.tables``) knows whether a row's ``from:`` exists and which raw
fields and parsed eventInfo fields the table consumes (the others go to ``unmapped``), and the mapper computes
only the values its rows read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

__all__ = ["Origin", "Source", "SourceKind", "info_field", "raw_field"]

Input = TypeVar("Input")
Input_contra = TypeVar("Input_contra", contravariant=True)

Origin = Literal["computed", "raw", "info", "event"]
"""Where a value comes from: ``compute(input)``; a copy of one raw record field; a copy of one parsed eventInfo
field; or the event the other rows built (the observables, filled by the mapper last)."""


@dataclass(frozen=True)
class Source(Generic[Input_contra]):
    """One value a field table row can name in ``from:``.

    Attributes:
        name: What the row says (``subject_user``, ``info.reason``).
        description: How the value is obtained, for the analyst: REVIEW.md prints it next to every row using it.
        raw_inputs: The raw record fields it reads; a table consumes those of its rows, the other raw fields go to
            ``unmapped`` (unless dropped by name). For origin ``raw``: the one field copied.
        info_inputs: The parsed eventInfo fields it reads; the others go to ``unmapped.event_info``. For origin
            ``info``: the field copied first.
        compute: The value for one record's input, None for no value; only (and always) for origin ``computed``.
        origin: See ``Origin``.
    """

    name: str
    description: str
    raw_inputs: tuple[str, ...] = ()
    info_inputs: tuple[str, ...] = ()
    compute: Callable[[Input_contra], object] | None = None
    origin: Origin = "computed"

    def __post_init__(self) -> None:
        if (self.compute is not None) != (self.origin == "computed"):
            raise ValueError(f"source {self.name!r}: a compute function goes with origin 'computed', and only there")
        if self.origin == "raw" and len(self.raw_inputs) != 1:
            raise ValueError(f"source {self.name!r}: a raw copy reads exactly one raw field")
        if self.origin == "info" and not self.info_inputs:
            raise ValueError(f"source {self.name!r}: an eventInfo copy names the field it copies")


def raw_field(name: str, description: str) -> Source[object]:
    """The raw record field ``name``, copied as it is."""
    return Source(name, description, raw_inputs=(name,), origin="raw")


def info_field(key: str, description: str, *, also: tuple[str, ...] = ()) -> Source[object]:
    """``info.<key>``: the parsed eventInfo field ``key`` copied as it is; ``also`` names the fields the parser
    derived it from (``timezone_offset`` from ``time`` and ``date``), consumed with it."""
    return Source(f"info.{key}", description, info_inputs=(key, *also), origin="info")


class SourceKind(Generic[Input]):
    """Every source of one kind of record, by name: what the field tables of that kind may name in ``from:``.

    A kind's module creates one with the sources it shares (``values.common``) and registers its own with ``add``
    or the ``derived`` decorator; a new stream adds a module with a kind of its own.
    """

    def __init__(self, name: str, sources: Iterable[Source[Input]] = ()) -> None:
        self.name = name
        self._sources: dict[str, Source[Input]] = {}
        for source in sources:
            self.add(source)

    def add(self, source: Source[Input]) -> Source[Input]:
        """Register ``source``; a second source of the same name is a programming error."""
        if source.name in self._sources:
            raise ValueError(f"{self.name}: source {source.name!r} is registered twice")
        self._sources[source.name] = source
        return source

    def derived(
        self, name: str, description: str, *, raw_inputs: tuple[str, ...] = (), info_inputs: tuple[str, ...] = ()
    ) -> Callable[[Callable[[Input], object]], Callable[[Input], object]]:
        """Decorator: register the function as the computed source ``name`` (see ``Source`` for the arguments)."""

        def register(compute: Callable[[Input], object]) -> Callable[[Input], object]:
            self.add(Source(name, description, raw_inputs, info_inputs, compute))
            return compute

        return register

    def __getitem__(self, name: str) -> Source[Input]:
        return self._sources[name]

    def __contains__(self, name: object) -> bool:
        return name in self._sources

    def __iter__(self) -> Iterator[Source[Input]]:
        return iter(self._sources.values())

    def names(self) -> list[str]:
        """The registered names, sorted (what an error about an unknown ``from:`` lists)."""
        return sorted(self._sources)
