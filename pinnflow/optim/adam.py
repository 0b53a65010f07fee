"""Adam with an exponentially decaying learning rate and optional gradient clipping (paper 003, App. B.1)."""

from __future__ import annotations

from dataclasses import dataclass

import optax

from pinnflow.core.config import Section, check_positive_ints, is_positive, is_positive_int, need

__all__ = ["OptimConfig", "learning_rate_schedule", "make_optimizer"]


@dataclass
class OptimConfig(Section):
    """Adam with an exponentially decaying learning rate from `lr` to `lr_final` over `schedule_steps` (the
    schedule's horizon; null: `steps`). A run may be extended on resume by raising `steps`; with a fixed
    `schedule_steps` the extended run equals one that ran all its steps at once."""

    steps: int = 40000
    schedule_steps: int | None = None
    batch_size: int = 256
    lr: float = 3e-3
    lr_final: float = 1e-5
    clip_norm: float | None = 1.0
    chunk: int = 1000  # steps per compiled lax.scan call (progress/NaN checks between chunks)
    checkpoint_every: int = 5000  # steps; a multiple of `chunk`
    # collocation points whose gradient is computed together: "auto" (16–64 by dimension on one CPU device, the
    # whole batch on accelerators or several devices), null (the whole batch) or an integer (pinnflow.core.chunking)
    point_chunk: int | str | None = "auto"

    def validate(self, where: str = "optim.") -> None:
        check_positive_ints(self, where, ("steps", "batch_size", "chunk", "checkpoint_every"))
        need(self.point_chunk in (None, "auto") or is_positive_int(self.point_chunk), f"{where}point_chunk",
             f"must be 'auto', null (one vmap over the batch) or a positive integer, got {self.point_chunk!r}")
        need(self.schedule_steps is None or is_positive_int(self.schedule_steps), f"{where}schedule_steps",
             f"must be a positive integer or null, got {self.schedule_steps!r}")
        need(is_positive(self.lr), f"{where}lr", f"must be > 0, got {self.lr!r}")
        need(is_positive(self.lr_final) and self.lr_final <= self.lr, f"{where}lr_final",
             f"must be in (0, lr], got {self.lr_final!r}")
        need(self.clip_norm is None or is_positive(self.clip_norm), f"{where}clip_norm",
             f"must be > 0 or null, got {self.clip_norm!r}")
        need(self.checkpoint_every % self.chunk == 0, f"{where}checkpoint_every",
             f"must be a multiple of {where}chunk ({self.chunk}), got {self.checkpoint_every}")


def learning_rate_schedule(o: OptimConfig) -> optax.Schedule:
    """lr decaying exponentially from `o.lr` to `o.lr_final` over `o.schedule_steps` (default `o.steps`)."""
    horizon = o.steps if o.schedule_steps is None else o.schedule_steps
    return optax.exponential_decay(o.lr, transition_steps=horizon, decay_rate=o.lr_final / o.lr)


def make_optimizer(o: OptimConfig) -> optax.GradientTransformation:
    """Adam on `learning_rate_schedule`; optional global-norm clipping."""
    parts = [optax.clip_by_global_norm(o.clip_norm)] if o.clip_norm else []
    return optax.chain(*parts, optax.adam(learning_rate_schedule(o)))
