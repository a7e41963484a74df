"""featurestore/conventions.py is plain data: the generators and the load generator read it without the service."""

from __future__ import annotations

import ast

from featurestore import conventions
from tests.conftest import REPO


def test_the_conventions_import_nothing_so_any_package_may_read_them() -> None:
    tree = ast.parse((REPO / "featurestore" / "conventions.py").read_text(encoding="utf-8"))
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    assert [ast.unparse(node) for node in imports] == ["from __future__ import annotations"]


def test_every_route_path_lies_under_the_api_prefix_but_the_root_metrics_path() -> None:
    paths = {name: value for name, value in vars(conventions).items() if name.endswith("_PATH")}
    outside = {name for name, path in paths.items() if not path.startswith(conventions.API_PREFIX + "/")}
    assert outside == {"METRICS_ROOT_PATH"}
    assert len(set(paths.values())) == len(paths)
