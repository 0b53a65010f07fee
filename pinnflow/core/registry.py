"""A small name -> factory registry shared by problems, losses and other pluggable parts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; unknown names raise a `KeyError` that lists the choices.

    `register` works as a plain call or as a decorator, with or without an explicit name
    (default: the factory's `__name__`). Registering a name twice is an error.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, factory: Callable[..., T] | None = None, *, name: str | None = None):
        def add(fn: Callable[..., T]) -> Callable[..., T]:
            key = name or fn.__name__
            if key in self._factories:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._factories[key] = fn
            return fn

        return add if factory is None else add(factory)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def factory(self, name: str) -> Callable[..., T]:
        try:
            return self._factories[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}"
            ) from None

    def get(self, name: str, **params: Any) -> T:
        return self.factory(name)(**params)

    def __contains__(self, name: object) -> bool:
        return name in self._factories
