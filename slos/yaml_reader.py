"""The one reader of spec YAML: every input form (native, OpenSLO, Sloth prometheus/v1 and its Kubernetes CRD) reads
its file here, so every one is bounded alike.

YAML aliases share one object, so a small file can name a document of billions of nodes ("billion laughs"): nothing
happens while it is loaded, but whatever walks it later (pydantic, the Sloth CRD's key renaming) walks every copy. The
node graph is composed first and its size counted as if every alias were a copy; a file above `MAX_SPEC_BYTES`, a
document above `MAX_EXPANDED_NODES` or an alias that contains itself is refused, naming the file, before any Python
object is built from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from slos.errors import SpecError

MAX_SPEC_BYTES = 1024 * 1024  # a spec with every feature is a few kB
MAX_EXPANDED_NODES = 100_000  # scalars, sequences and mappings, every alias counted as a copy of what it names


class _Recursive(Exception):
    """An alias inside the node it names: its expansion never ends."""


def expanded_size(root: yaml.Node) -> int:
    """Nodes of `root` with every alias counted as a full copy (memoised per node, so a bomb is counted, not walked);
    `_Recursive` for a node that contains itself."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _Recursive
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key_node) + size(value_node) for key_node, value_node in node.value)
        open_nodes.discard(key)
        sizes[key] = total
        return total

    return size(root)


def read_documents(path: Path) -> list[Any]:
    """The non-empty YAML documents of `path`, or SpecError naming the file: unreadable, too large, malformed, or
    expanding (through aliases) past `MAX_EXPANDED_NODES`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(path, [("", f"cannot read: {exc}")]) from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(path, [("", f"the file is {len(raw)} bytes: spec files are at most {MAX_SPEC_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(path, [("", f"cannot read: {exc}")]) from None
    loader = yaml.SafeLoader(text)
    documents: list[Any] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            where = f"documents[{len(documents)}]" if documents else ""
            try:
                nodes = expanded_size(node)
            except (_Recursive, RecursionError):
                raise SpecError(path, [(where, "an alias refers to a node that contains it: refused")]) from None
            if nodes > MAX_EXPANDED_NODES:
                reason = (
                    f"aliases expand this document to {nodes} nodes, above the limit of {MAX_EXPANDED_NODES}: "
                    "refused (write the repeated part out, or use fewer aliases)"
                )
                raise SpecError(path, [(where, reason)])
            document = loader.construct_document(node)
            if document is not None:
                documents.append(document)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(path, [(at, f"malformed YAML: {getattr(exc, 'problem', None) or exc}")]) from None
    except RecursionError:
        raise SpecError(path, [("", "the YAML nests too deeply: refused")]) from None
    finally:
        loader.dispose()
    return documents
