"""Targets and PDE problems, by name: `problems.get(name, **params)`, `problems.names()`,
`problems.register(factory)` (also a decorator; the factory returns a `pinnflow.Target`)."""

from pinnflow.core.registry import Registry
from pinnflow.target import Target

REGISTRY: Registry[Target] = Registry("problem")
register = REGISTRY.register
names = REGISTRY.names
get = REGISTRY.get

# Importing the families registers them.
from problems import funnel, gaussian, gmm, many_well  # noqa: E402,F401

__all__ = ["register", "names", "get", "REGISTRY"]
