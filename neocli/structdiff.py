"""Short, readable summaries of how two JSON-like values differ (merge errors, resume checks).

A model's codec can hold a vocabulary of thousands of entries; printing both
descriptions made a merge error a 10 kB line. ``describe_differences`` names the
first few differing paths with abbreviated values and counts the rest.
"""
from __future__ import annotations

import itertools
from typing import Any, Iterator

__all__ = ["differences", "describe_differences"]

# Counting stops here: "10000+ differences" is as useful as the exact figure.
_COUNT_CAP = 10_000


def _short(value: Any, width: int = 40) -> str:
    if isinstance(value, (list, tuple)) and len(value) > 4:
        text = f"[{len(value)} entries]"
    elif isinstance(value, dict) and len(value) > 4:
        text = f"{{{len(value)} keys}}"
    else:
        text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _small(seq: Any) -> bool:
    """A short list of plain values (a size such as [5, 5, 32]): compared as one value."""
    return len(seq) <= 4 and not any(isinstance(x, (dict, list, tuple)) for x in seq)


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def differences(a: Any, b: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """``(path, what)`` for every difference between ``a`` and ``b``, in order.

    Dicts are compared key by key (sorted), lists element by element after their
    lengths; anything else by equality.
    """
    if a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            p = _join(path, k)
            if k not in b:
                yield p, f"{_short(a[k])} vs (absent)"
            elif k not in a:
                yield p, f"(absent) vs {_short(b[k])}"
            else:
                yield from differences(a[k], b[k], p)
        return
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and not (_small(a) and _small(b)):
        if len(a) != len(b):
            yield path or "value", f"{len(a)} vs {len(b)} entries"
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, _join(path, i))
        return
    yield path or "value", f"{_short(a)} vs {_short(b)}"


def describe_differences(a: Any, b: Any, limit: int = 3, path: str = "") -> str:
    """The first ``limit`` differences as ``path: this vs that``, then how many more.

    Returns ``""`` when the values are equal. The text stays short (a few hundred
    characters at most) whatever the size of the values.
    """
    found = list(itertools.islice(differences(a, b, path), _COUNT_CAP + 1))
    if not found:
        return ""
    text = "; ".join(f"{p}: {w}" for p, w in found[:limit])
    more = len(found) - limit
    if more > 0:
        count = f"{_COUNT_CAP - limit}+" if len(found) > _COUNT_CAP else str(more)
        text += f"; and {count} more difference{'s' if more > 1 else ''}"
    return text
