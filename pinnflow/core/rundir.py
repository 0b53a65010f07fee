"""A run directory: `config.yaml`, an atomic code-free checkpoint (`checkpoint.npz`) and `history.csv`.

`RunDir.open(path, config, resume)` refuses to overwrite a run unless resuming, and refuses to resume with a
config that differs from the saved one (naming the keys), before anything is built or compiled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import pandas as pd

from pinnflow.core import checkpoint
from pinnflow.core.config import ConfigBase, ConfigError, changed_keys

__all__ = ["RunDir", "Progress", "CHECKPOINT", "CONFIG", "HISTORY"]

CHECKPOINT = "checkpoint.npz"
CONFIG = "config.yaml"
HISTORY = "history.csv"


@dataclass
class Progress:
    """Where an iterative solver stands: steps done, wall seconds of the steps (compilation excluded), history
    rows, the median seconds per step (`pinnflow.core.loop.median_step_seconds`) and the compilation seconds."""

    step: int = 0
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    seconds_per_it: float = float("nan")
    compile_seconds: float = 0.0

    def meta(self) -> dict:
        return {"step": self.step, "seconds": self.seconds, "seconds_per_it": self.seconds_per_it,
                "compile_seconds": self.compile_seconds, "history": self.history}

    @classmethod
    def from_meta(cls, meta: dict) -> Progress:
        return cls(int(meta["step"]), float(meta["seconds"]), list(meta["history"]), float(meta["seconds_per_it"]),
                   float(meta.get("compile_seconds", 0.0)))


@dataclass(frozen=True)
class RunDir:
    """The files of one run (or fine-tuning) in `path`."""

    path: Path

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    def exists(self) -> bool:
        return self.checkpoint.exists()

    @classmethod
    def open(cls, path: str | Path, config: ConfigBase, resume: bool, what: str = "run",
             may_change: tuple[str, ...] = ()) -> RunDir:
        """Create (or reopen with `resume`) a run directory for `config` and write its `config.yaml`; on resume
        only the dotted keys in `may_change` (e.g. a step budget) may differ from the saved config."""
        rd = cls(Path(path))
        rd.path.mkdir(parents=True, exist_ok=True)
        if rd.exists():
            if not resume:
                raise FileExistsError(f"{rd.path} already holds a {what}; pass resume=True (--resume) or another dir")
            rd.require_config(config, may_change)
        if jax.process_index() == 0:
            config.to_yaml(rd.path / CONFIG)
        return rd

    def require_config(self, config: ConfigBase, may_change: tuple[str, ...] = ()) -> None:
        """The saved config must equal `config` but for `may_change`; the error names the keys that differ."""
        saved = type(config).from_saved(self.path / CONFIG).to_dict()
        diff = [k for k in changed_keys(saved, config.to_dict()) if k not in may_change]
        if diff:
            raise ConfigError(f"--resume: the config differs from the one saved in {self.path / CONFIG} "
                              f"in {', '.join(diff)}")

    def save(self, trees: dict[str, Any], progress: Progress) -> None:
        """Checkpoint `trees` and `progress` atomically; the history also goes to `history.csv`. In a
        multi-process run (`jax.distributed`) only process 0 writes."""
        if jax.process_index() != 0:
            return
        checkpoint.save(self.checkpoint, trees, progress.meta())
        pd.DataFrame(progress.history).to_csv(self.path / HISTORY, index=False)

    def load(self, likes: dict[str, Any]) -> tuple[dict[str, Any], Progress]:
        """The checkpointed trees (restructured like `likes`) and the progress."""
        trees, meta = checkpoint.load(self.checkpoint, likes)
        return trees, Progress.from_meta(meta)
