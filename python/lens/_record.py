"""`Record`: plain classes with a dataclass's manners (repr, `==`, `as_dict`; `Frozen` also immutable and
hashable), for the records on every query's path (flag changes, the guard's SLOs, config, events and
alerts). `dataclasses` imports `inspect` (and `ast`, `dis`, `tokenize`), a cost `import lens` and the
`lens` command should not pay for a handful of value classes; the public result types (`lens.Hit`,
`lens.SearchResult`, ...) stay dataclasses, loaded with the search path.

A subclass lists its fields in `_FIELDS` (the order of its `__init__` and repr) and writes `__init__`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar

__all__ = ["Frozen", "Record"]


class Record:
    """Compared and printed by value over `_FIELDS`, as `@dataclass` would; mutable, so unhashable."""

    __slots__ = ()
    _FIELDS: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._FIELDS)
        return f"{type(self).__qualname__}({fields})"

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict (records inside records become dicts too, as `dataclasses.asdict` does)."""
        return {f: _plain(getattr(self, f)) for f in self._FIELDS}


class Frozen(Record):
    """A `Record` whose fields cannot be assigned after `__init__` (which sets them with `_set`); hashable."""

    __slots__ = ()

    def _set(self, **values: Any) -> None:
        for f, v in values.items():
            object.__setattr__(self, f, v)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._values())

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled by value and rebuilt through `__init__` (which takes the fields in `_FIELDS` order):
        # the default would restore the slots with the `__setattr__` that refuses.
        return (type(self), self._values())


def _plain(v: Any) -> Any:
    if isinstance(v, Record):
        return v.as_dict()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(x) for x in v)
    return v
