"""The render seeds of the reader's shards (kept apart from the renderer, so the CLI's help can name them
without importing it)."""

from __future__ import annotations

#: the render seed of a split's shard i is its base + i
SEED_BASES = {"train": 1000, "focus": 2000, "small": 3000, "hard": 4000, "val": 5000, "test": 9000}


def shard_seed(split: str, index: int) -> int:
    """The render seed of shard ``index`` of a split (:data:`SEED_BASES`: train 1000+i, ..., test 9000+i)."""
    return SEED_BASES[split] + index
