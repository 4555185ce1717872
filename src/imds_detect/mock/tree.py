"""Metadata trees: nested dicts whose leaves are text (or a function of the request), served as listings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Union

from .http import Request, Response

Leaf = str | Callable[[Request], Response]
Tree = Mapping[str, Union["Tree", Leaf]]  # a recursive alias needs the string form
Node = Tree | Leaf


def lookup(tree: Tree, segments: list[str]) -> Node | None:
    """The node at `segments` (empty segments ignored), or None."""
    node: Node = tree
    for segment in segments:
        if not segment:
            continue
        if not isinstance(node, Mapping) or segment not in node:
            return None
        node = node[segment]
    return node


def listing(tree: Tree) -> str:
    """A directory listing: one name per line, sub-directories with a trailing slash (AWS/GCP style)."""
    return "\n".join(f"{name}/" if isinstance(child, Mapping) else name for name, child in tree.items())


def to_json(tree: Tree, key: Callable[[str], str] = lambda name: name) -> dict[str, object]:
    """The tree as JSON-ready data (GCP's ?recursive=true). Function leaves (tokens, credentials) are left
    out, as the real services leave them out of recursive listings."""
    out: dict[str, object] = {}
    for name, child in tree.items():
        if isinstance(child, Mapping):
            out[key(name)] = to_json(child, key)
        elif not callable(child):
            out[key(name)] = child
    return out
