"""Targets and PDE problems, by name: `problems.get(name, **params)`, `problems.names()`,
`problems.register(factory)` (also a decorator; the factory returns a `pinnflow.Target`).

A user's own target needs no registration: `problems.from_reference("my_targets.py:banana")` (a Python file,
which is executed) or `problems.from_reference("mypackage.targets:banana")` (an importable module) returns the
`Target` named there, or calls it with the parameters if it is a factory. The CLI's `--target` stores such a
reference in the run's config (`config.target`), and `pinnflow.load_run` resolves it with `resolve`.
"""

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

from pinnflow.core.registry import Registry
from pinnflow.target import Target

REGISTRY: Registry[Target] = Registry("problem")
register = REGISTRY.register
names = REGISTRY.names
get = REGISTRY.get

# Importing the families registers them.
from problems import funnel, gaussian, gmm, many_well, mixtures  # noqa: E402,F401

__all__ = ["register", "names", "get", "REGISTRY", "from_reference", "absolute_reference", "resolve"]


def _split(ref: str) -> tuple[str, str]:
    where, sep, attr = ref.rpartition(":")
    if not sep or not where or not attr:
        raise ValueError(f"target reference {ref!r}: expected 'path/to/file.py:name' or 'package.module:name'")
    return where, attr


def absolute_reference(ref: str) -> str:
    """The reference with a file path made absolute (so a run's config works from any directory)."""
    where, attr = _split(ref)
    return f"{Path(where).resolve()}:{attr}" if where.endswith(".py") else ref


def from_reference(ref: str, **params) -> Target:
    """The `Target` at `ref` ('file.py:name' or 'module:name'); a callable there is called with `params`."""
    where, attr = _split(ref)
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise FileNotFoundError(f"target reference {ref!r}: no file {path}")
        name = f"_pinnflow_target_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
    else:
        module = importlib.import_module(where)
    if not hasattr(module, attr):
        found = sorted(k for k, v in vars(module).items() if isinstance(v, Target))
        raise ValueError(f"target reference {ref!r}: {where} has no {attr!r}; Targets there: "
                         f"{', '.join(found) or 'none'}")
    obj = getattr(module, attr)
    target = obj if isinstance(obj, Target) else obj(**params) if callable(obj) else obj
    if not isinstance(target, Target):
        raise ValueError(f"target reference {ref!r}: expected a pinnflow.Target (or a factory of one), "
                         f"got {type(target).__name__}")
    if params and isinstance(obj, Target):
        raise ValueError(f"target reference {ref!r} is a Target, not a factory: it takes no problem_params")
    return target


def resolve(problem: str | None, target: str | None, params: dict | None = None) -> Target:
    """The target of a run's config: a registered `problem` or a `target` reference (exactly one)."""
    params = params or {}
    if (problem is None) == (target is None):
        raise ValueError("name exactly one of a registered problem (--problem; see `pinnflow list`) or your own "
                         "target (--target file.py:name or package.module:name)")
    return get(problem, **params) if problem is not None else from_reference(target, **params)

from problems import datasets, fokker_planck  # noqa: E402,F401
