"""Checks of the chapters' source that a reader of the rendered book would otherwise catch: hand-typed tables (they
render as raw pipe text from a code cell, and every table must come from records or data through wavelab.report.tables),
code lines wider than the page's column, and long cells of code that bury the story."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
MAX_LINE = 76       # characters: the theme's code column shows 79 at a 1280-pixel window, minus the cell's padding
MAX_CELL_LINES = 40  # a longer cell of code belongs in wavelab (e.g. wavelab.report.plots) or is folded with hide-input
TABLE_RULE = re.compile(r"\|\s*:?-{3,}|-{3,}:?\s*\|")  # the rule of a Markdown pipe table: |---|, :---|, "---|" * n


def cells(path: Path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        yield i, cell, "".join(cell["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_hand_typed_table(path):
    found = [(i, line) for i, _, src in cells(path) for line in src.splitlines()
             if TABLE_RULE.search(line)]
    assert not found, f"{path.name}: Markdown table rows (make a wavelab.report.tables table from data instead): {found[:3]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_fits_the_column(path):
    wide = [(i, len(line), line[:40]) for i, c, src in cells(path) if c["cell_type"] == "code"
            for line in src.splitlines() if len(line) > MAX_LINE]
    assert not wide, f"{path.name}: {len(wide)} code lines wider than {MAX_LINE} characters, e.g. {wide[:3]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_long_code_cells_are_folded(path):
    long = [(i, len(src.splitlines())) for i, c, src in cells(path) if c["cell_type"] == "code"
            and len(src.splitlines()) > MAX_CELL_LINES and "hide-input" not in c["metadata"].get("tags", [])]
    assert not long, f"{path.name}: code cells over {MAX_CELL_LINES} lines without the hide-input tag: {long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_saved_without_outputs(path):
    with_outputs = [i for i, c, _ in cells(path) if c["cell_type"] == "code" and c.get("outputs")]
    assert not with_outputs, f"{path.name}: cells saved with outputs (clear them; the book executes): {with_outputs}"


def test_the_rule_pattern_finds_tables_and_nothing_else():
    assert TABLE_RULE.search("|---|---|") and TABLE_RULE.search("| :--- | ---: |")
    assert TABLE_RULE.search('rows = ["|" + "---|" * 4]')
    assert not TABLE_RULE.search("x = a - b  # ---") and not TABLE_RULE.search("---") and not TABLE_RULE.search("a|b")
