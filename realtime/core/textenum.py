"""Enums whose members are written out as their value: `str()`, f-strings and JSON give
"live", not "SourceState.LIVE" (Python 3.11's `StrEnum`, for 3.10 too)."""

from __future__ import annotations

import enum


class TextEnum(str, enum.Enum):
    """A `str` enum written out as its value; compared, hashed and stored as the enum."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)
