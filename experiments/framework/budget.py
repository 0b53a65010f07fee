"""Reproduction budgets: YAML files of layered overrides, resolved per cell (table × problem × method).

A budget (`experiments/configs/reproduce/<name>.yaml`, or any path) has the sections

- `config`: `pinnflow.Config` overrides (dotted keys as in `Config.override`, or nested mappings) for every
  loss cell;
- `baseline`: the `BaselineBudget` fields of every baseline cell (`extra.<key>` for its `extra`);
- `tables: {<table>: {config, baseline, params}}`: the same per table (`params`: the table's own knobs,
  e.g. `pretrain_steps`);
- `seeds` (default 1; `tables.<t>.seeds` overrides it for one table) and a free-text `description`.

Each section may have `methods: {<method>: {...}}` and `problems: {<problem>: {...}}` sub-sections applied
on top (and nested: `problems.<p>.methods.<m>`). Later layers win:
section < its methods < its problems < tables.<t>.section < its methods < its problems.

A layer may name a recipe, `recipe: gmm_log_fp`: a `pinnflow.Config` YAML in `experiments/configs/recipes/`,
or a YAML path relative to that folder. Its keys come first in that layer, the layer's own keys on top.
`problem`, `loss` and `seed` of the recipe are left out (the cell sets them). The recipe's contents, not its
name, enter the cell's inputs, so a changed recipe recomputes its cells.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from pinnflow.core.config import coerce

__all__ = ["BUDGETS", "RECIPES", "Budget", "flatten", "layer", "recipe_layer"]

BUDGETS = Path(__file__).parents[1] / "configs" / "reproduce"
RECIPES = Path(__file__).parents[1] / "configs" / "recipes"
CELL_KEYS = ("problem", "loss", "seed")  # a cell's own: never taken from a recipe
SECTIONS = ("seeds", "config", "baseline", "tables", "description")
TABLE_SECTIONS = ("config", "baseline", "params", "seeds")


def flatten(d: dict, prefix: str = "") -> dict:
    """{"optim": {"steps": 3}, "sampler.n_eval": 5} -> {"optim.steps": 3, "sampler.n_eval": 5}."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def recipe_layer(ref: str) -> dict:
    """The dotted config keys of a recipe (`experiments/configs/recipes/<ref>.yaml`, or a YAML path), without
    the cell's own keys (`CELL_KEYS`)."""
    path = RECIPES / (ref if _is_yaml(ref) else f"{ref}.yaml")  # absolute paths stay
    if not path.exists():
        raise _unknown("recipe", ref, RECIPES)
    return {k: v for k, v in flatten(_read_mapping(path, "recipe")).items() if k.split(".")[0] not in CELL_KEYS}


def _is_yaml(ref: str | Path) -> bool:
    return Path(ref).suffix in (".yaml", ".yml")


def _unknown(what: str, ref, folder: Path) -> KeyError:
    """The error for a name that is not a YAML file in `folder`, listing the names that are."""
    known = sorted(p.stem for p in folder.glob("*.yaml"))
    return KeyError(f"unknown {what} {str(ref)!r}; available: {', '.join(known)} or a YAML path")


def _read_mapping(path: Path, what: str) -> dict:
    """A YAML file's top-level mapping, its values coerced (`pinnflow.core.config.coerce`)."""
    data = coerce(yaml.safe_load(path.read_text()) or {})
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path}: expected a mapping at top level")
    return data


def layer(section: dict | None, problem: str, method: str) -> dict:
    """A section's own keys (flattened to dotted keys; a `recipe` first), overridden by its `methods.<method>`
    and then its `problems.<problem>` sub-sections (each layered the same way, so `problems.<p>.methods.<m>`
    wins)."""
    section = dict(section or {})
    by_problem = section.pop("problems", None) or {}
    by_method = section.pop("methods", None) or {}
    recipe = section.pop("recipe", None)
    out = recipe_layer(recipe) if recipe else {}
    out.update(flatten(section))
    for sub in (by_method.get(method), by_problem.get(problem)):
        if sub:
            out.update(layer(sub, problem, method))
    return out


@dataclass
class Budget:
    """A reproduction budget read from YAML (see the module docstring for the layout)."""

    name: str
    data: dict
    path: Path | None = None

    @classmethod
    def load(cls, name_or_path: str | Path) -> Budget:
        """A budget by name (`experiments/configs/reproduce/<name>.yaml`) or by path to a YAML file."""
        path = Path(name_or_path)
        if not _is_yaml(path):
            path = BUDGETS / f"{name_or_path}.yaml"
            if not path.exists():
                raise _unknown("budget", name_or_path, BUDGETS)
        data = _read_mapping(path, "budget")
        unknown = set(data) - set(SECTIONS)
        if unknown:
            raise ValueError(f"budget {path}: unknown sections {sorted(unknown)}; allowed: {', '.join(SECTIONS)}")
        return cls(path.stem, data, path)

    @property
    def seeds(self) -> int:
        return int(self.data.get("seeds", 1))

    def seeds_for(self, table: str) -> int:
        """`tables.<table>.seeds` if given, else the budget's `seeds`."""
        own = ((self.data.get("tables") or {}).get(table) or {}).get("seeds")
        return self.seeds if own is None else int(own)

    def section(self, name: str, table: str, problem: str, method: str) -> dict:
        """The merged dotted keys of section `name` (config, baseline or params) for one cell."""
        out = layer(self.data.get(name), problem, method) if name != "params" else {}
        table_sec = (self.data.get("tables") or {}).get(table) or {}
        unknown = set(table_sec) - set(TABLE_SECTIONS)
        if unknown:
            raise ValueError(f"budget {self.name}: tables.{table} has unknown sections {sorted(unknown)}")
        out.update(layer(table_sec.get(name), problem, method))
        return out

    def overrides(self, table: str, problem: str, method: str) -> list[str]:
        """`Config.override` strings of a loss cell."""
        return [f"{k}={json.dumps(v)}" for k, v in self.section("config", table, problem, method).items()]
