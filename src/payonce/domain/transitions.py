"""The transition-table mechanism every status in payonce moves through."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)


class IllegalTransition(Exception):
    """A status change the table does not allow (a conflicting outcome, never a repeated one)."""

    def __init__(self, entity: str, current: StrEnum, target: StrEnum) -> None:
        super().__init__(f"{entity}: {current} -> {target} is not allowed")
        self.entity = entity
        self.current = current
        self.target = target


@dataclass(frozen=True)
class TransitionTable(Generic[S]):
    """Which status may follow which. Moving to the status one is already in is a no-op."""

    entity: str
    allowed: Mapping[S, frozenset[S]]

    def is_noop(self, current: S, target: S) -> bool:
        """True for a repeated outcome; raises for one the table forbids."""
        if current == target:
            return True
        if target not in self.allowed.get(current, frozenset()):
            raise IllegalTransition(self.entity, current, target)
        return False
