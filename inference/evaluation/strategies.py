"""MIST's choice of which object to refine next (DynaMITe's ``--eval-strategy``, spec A4.2).

An :class:`ObjectChooser` lives for one image. Each step the loop asks it for
:meth:`~ObjectChooser.candidates` (object indices, 0-based, most preferred first, only objects
still below the IoU threshold), tries to place a click for the first one, and reports the index
it used with :meth:`~ObjectChooser.chose`. DynaMITe always clicks its first candidate; we move
to the next one only when the simulator can place no click for it (a guard for degenerate
cases, never reached when an object's error is clickable).

Ties in IoU go to the lower object index (DynaMITe sorts with ``torch.topk``, whose order for
ties is unspecified). ``max_dt`` chooses no object: the loop handles it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

STRATEGIES = ("best", "random", "worst", "max_dt", "round_robin", "wlb")
DEFAULT_MAX_STREAK = 10  # round_robin's hard-coded ``max_cont_clicks``


class ObjectChooser:
    """Per-image state of one strategy.

    ``limit``: ``wlb``'s per-object cap β on clicks aimed at an object (its initial click
    included). ``max_streak``: ``round_robin``'s consecutive clicks on one object before it
    switches. ``rng``: the run's shared generator (``random``, ``round_robin``).
    """

    def __init__(
        self,
        strategy: str,
        num_objects: int,
        *,
        threshold: float,
        rng: random.Random,
        limit: int,
        max_streak: int = DEFAULT_MAX_STREAK,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; one of {', '.join(STRATEGIES)}")
        self.strategy = strategy
        self.threshold = threshold
        self.rng = rng
        self.limit = limit
        self.max_streak = max_streak
        # every object starts with its initial click, which counts as aimed at it
        self.aimed = [1] * num_objects
        self.order = list(range(num_objects))  # reshuffled in place each step, as DynaMITe does
        self.streak = [1] * num_objects
        self.current = -1
        self._kept_current = False

    def candidates(self, ious: Sequence[float]) -> list[int]:
        """Indices of failing objects, most preferred first (``ious``: one IoU per object)."""
        failing = [i for i, v in enumerate(ious) if v < self.threshold]
        if self.strategy == "best":
            return sorted(failing, key=lambda i: (-ious[i], i))
        if self.strategy == "worst":
            return sorted(failing, key=lambda i: (ious[i], i))
        if self.strategy == "random":
            self.rng.shuffle(self.order)
            return [i for i in self.order if ious[i] < self.threshold]
        if self.strategy == "wlb":
            capped = [i for i in failing if self.aimed[i] >= self.limit]
            under = sorted((i for i in failing if i not in capped), key=lambda i: (ious[i], i))
            # with no failing object under the cap, DynaMITe falls back to the best failing one
            return under + sorted(capped, key=lambda i: (-ious[i], i))
        if self.strategy == "round_robin":
            return self._round_robin(ious)
        return []  # max_dt

    def chose(self, index: int) -> None:
        """Record that a click aimed at object ``index`` was placed."""
        self.aimed[index] += 1
        if self.strategy != "round_robin":
            return
        if self._kept_current and index == self.current:
            self.streak[index] += 1
        else:
            # switching: the new object's streak continues from its count (its initial click
            # makes the first object chosen start at 2), every other streak restarts
            count = self.streak[index] + 1
            self.streak = [0] * len(self.streak)
            self.streak[index] = count
            self.current = index

    def _round_robin(self, ious: Sequence[float]) -> list[int]:
        tired = [s >= self.max_streak for s in self.streak]
        if all(v >= self.threshold or t for v, t in zip(ious, tired)):
            self.streak = [0] * len(self.streak)
            self.current = -1
        c = self.current
        keep = c != -1 and self.streak[c] < self.max_streak and ious[c] < self.threshold
        self._kept_current = keep
        if keep:
            return [c]  # DynaMITe stops the image if this click cannot be placed
        self.rng.shuffle(self.order)
        fresh = [i for i in self.order if self.streak[i] < self.max_streak]
        return [i for i in fresh if ious[i] < self.threshold]
