"""What every ``merge`` checks before touching a weight (shared by Hierarchy and ImageEncoder)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._errors import NeoError
from .params import MergeMode
from .structdiff import describe_differences


def merge_sources(target: Any, sources: Any, mode: Any, what: str) -> tuple[MergeMode, list[Any]]:
    """Validate ``merge(sources, mode)`` on ``target``: the mode, the list, every
    source's type and structure (quirk Q6: a clear error naming the first difference).

    ``what`` names the argument in messages (``"hierarchies"``, ``"image_encoders"``).
    Returns the mode as a ``MergeMode`` and the sources as a list.
    """
    try:
        mode = MergeMode(int(mode))
    except (ValueError, TypeError):
        raise NeoError(f"mode must be merge_average or merge_random, got {mode!r}") from None
    if not isinstance(sources, Sequence) or isinstance(sources, (str, bytes)):
        raise TypeError(f"{what} must be a list of {type(target).__name__}")
    srcs = list(sources)
    if not srcs:
        raise NeoError(f"merge needs at least one {type(target).__name__}")
    mine = target._structure()
    for k, src in enumerate(srcs):
        if not isinstance(src, type(target)):
            raise TypeError(f"{what}[{k}] must be a {type(target).__name__}, got {type(src).__name__}")
        theirs = src._structure()
        if theirs != mine:
            # A short summary: printing both structures made a 10 kB line.
            raise NeoError(f"cannot merge {what}[{k}]: its structure differs (this vs theirs: "
                           f"{describe_differences(mine, theirs, path='structure')})")
    return mode, srcs
