"""Time as a dependency, so tests can pin it."""

from __future__ import annotations

from collections.abc import Callable

Clock = Callable[[], float]
