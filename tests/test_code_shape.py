"""The package stays readable: no function in wavelab/ runs over 80 lines (the command line's argument parser, a
flat list of options, is the one exception)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wavelab"
LONGEST = 80
EXCEPTIONS = {("__main__.py", "build_parser")}


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST and (path.name, node.name) not in EXCEPTIONS:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these into functions a reader can follow: " + "; ".join(long)
