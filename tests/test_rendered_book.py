"""The rendered book in a real browser: every page of the built HTML (``_build/html``, or ``WAVELAB_BOOK_HTML``)
opened in headless Chromium and checked for raw markdown tables, raw TeX, console and network errors, results tables
wider than the content column and audio players that do not decode to their stated duration (see
:mod:`tests.book_pages`).  A full-page screenshot of each page is saved to ``_build/screenshots/<page>.png`` (or
``WAVELAB_BOOK_SCREENSHOTS``).

The browser tests carry the ``rendered_book`` marker: the test command runs them after the book build
(``pytest tests -m rendered_book``) and the unit tests before it (``-m "not rendered_book"``).  The checker itself is
tested first on small synthetic pages, each with one known defect, and one clean page that must pass.

Where playwright or Chromium is missing, or the book has not been built, the browser tests skip with what is
missing and how to get it; with ``CI=true`` they fail instead.
"""

from __future__ import annotations

import base64
import io
import os
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests import book_pages
from tests.book_pages import Problem, scan_text

ROOT = Path(__file__).resolve().parents[1]
rendered_book = pytest.mark.rendered_book


def _site_dir() -> Path:
    return Path(os.environ.get("WAVELAB_BOOK_HTML") or ROOT / "_build" / "html").resolve()


def _screenshot_dir() -> Path:
    return Path(os.environ.get("WAVELAB_BOOK_SCREENSHOTS") or _site_dir().parent / "screenshots").resolve()


def _unavailable(reason: str) -> None:
    """Skip with ``reason``; fail with it under CI (``CI=true``), where the check must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the rendered-book check must run here)", pytrace=False)
    pytest.skip(reason)


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


@pytest.fixture(scope="module")
def checker():
    """One headless Chromium (one context) for the whole module."""
    missing = book_pages.missing_requirements()
    if missing:
        _unavailable("the rendered-book browser check cannot run; missing: " + "; ".join(missing))
    with book_pages.PageChecker() as c:
        yield c


# --- unit tests of the text scan (no browser) --------------------------------------------------------------------

def _kinds(problems: list[Problem]) -> set[str]:
    return {p.kind for p in problems}


@pytest.mark.parametrize("text, kinds", [
    ("| model | nll |\n|---|---|\n| wavenet | 1.21 |", {"markdown-table"}),
    ("| model | nll | |:---|---:| | wavenet | 1.21 |", {"markdown-table"}),   # lines collapsed: the rule remains
    ("| a | b |\n| 1 | 2 |", {"markdown-table"}),                              # two rows, no rule
    ("the density $p(x)$ of a frame", {"raw-maths"}),
    ("$$\nx^2\n$$", {"raw-maths"}),
    (r"where \(x_t\) is a sample", {"raw-maths"}),
    (r"\[ \log p(x) \]", {"raw-maths"}),
    (r"\begin{align} a \end{align}", {"raw-maths"}),
    ("a GPU hour costs $5 or $10 at most", set()),                          # money, not maths
    ("p(x | z) against q(z | x) and r(y | w)", set()),                      # conditional bars in prose
    ("one | pipe-separated | line", set()),
    ("nll 1.21 bits, 3 layers", set()),
])
def test_scan_text_flags_raw_tables_and_maths_only(text, kinds):
    assert _kinds(scan_text("p.html", [{"where": "p", "text": text}])) == kinds


def test_problem_reads_page_kind_and_excerpt():
    (problem,) = scan_text("book/wavenet.html", [{"where": "p", "text": "see $x^2$"}])
    assert str(problem).startswith("book/wavenet.html: [raw-maths] ")
    assert "$x^2$" in str(problem)


def test_format_problems_groups_by_kind_and_caps_each():
    problems = [Problem("p.html", "raw-maths", f"maths {i}") for i in range(9)] + [Problem("p.html", "audio", "bad")]
    text = book_pages.format_problems(problems, per_kind=3)
    lines = text.splitlines()
    assert len(lines) == 5
    assert lines[:3] == [f"  - p.html: [raw-maths] maths {i}" for i in range(3)]
    assert "6 more [raw-maths]" in lines[3] and lines[4] == "  - p.html: [audio] bad"


# --- the checker on synthetic pages (browser) ----------------------------------------------------------------------

def _wav_data_uri(seconds: float, rate: int = 16000) -> str:
    n = round(seconds * rate)
    pcm = (3000 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_WAV = _wav_data_uri(0.25)

# A content column of 600 px, as sphinx-book-theme's article.bd-article; each page's body goes inside it.
_PAGE = ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>{name}</title></head><body><main id="main-content">'
         '<article class="bd-article" style="width:600px; padding:0 10px">{body}</article></main></body></html>')

SYNTHETIC = {
    "clean": (("<h1>A clean page</h1><p>Prose with p(x | z) and q(z | x) and r(y | w), and a cost of $5 or $10.</p>"
               "<p>Code: <code>$x^2$ \\(y\\)</code></p><pre>| a | b |\n|---|---|\n| 1 | 2 |</pre>"
               "<mjx-container>\\(x^2\\) $$y$$</mjx-container><div style='display:none'>$hidden$ |---|---|</div>"
               "<div style='overflow-x:auto'><table class='wavelab-table'><tr><th>model</th><th>nll</th></tr>"
               "<tr><td>wavenet</td><td>1.21</td></tr></table></div>"
               f"<audio controls src='{_WAV}' data-duration-s='0.250'></audio>"
               "<script>console.log('not an error'); console.warn('nor this');</script>"), set()),
    "markdown_table": ("<p>| model | nll |\n|---|---|\n| wavenet | 1.21 |</p>", {"markdown-table"}),
    "raw_dollar_maths": ("<p>The likelihood $x^2$ of a frame.</p>", {"raw-maths"}),
    "raw_sphinx_maths": (('<p>A sample <span class="math notranslate nohighlight">\\(x_t\\)</span>.</p>'
                          '<div class="math notranslate nohighlight">\\[\\log p(x)\\]</div>'), {"raw-maths"}),
    "console_error": ("<p>fine text</p><script>console.error('something broke');</script>", {"console-error"}),
    "page_error": ("<p>fine text</p><script>throw new Error('uncaught');</script>", {"page-error"}),
    "missing_resource": ("<p>fine text</p><img src='no-such-image.png' alt='x'>", {"network-error"}),
    "wide_table": (("<div style='overflow-x:auto'><table class='wavelab-table'><tr>"
                    "<td style='min-width:900px'>a very wide results table</td></tr></table></div>"), {"wide-table"}),
    "audio_wrong_duration": (f"<audio controls src='{_WAV}' data-duration-s='1.250'></audio>", {"audio"}),
    "audio_no_duration": (f"<audio controls src='{_WAV}'></audio>", {"audio"}),
    "audio_undecodable": ("<audio controls src='data:audio/wav;base64,AAAAAAAA' data-duration-s='1.000'></audio>",
                          {"audio"}),
}


@pytest.fixture(scope="module")
def synthetic_site(tmp_path_factory):
    """The synthetic pages in a temporary folder, served over localhost; yields (base URL, folder)."""
    root = tmp_path_factory.mktemp("synthetic_site")
    for name, (body, _) in SYNTHETIC.items():
        (root / f"{name}.html").write_text(_PAGE.format(name=name, body=body), encoding="utf-8")
    with book_pages.serve(root) as base:
        yield base, root


@rendered_book
@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_checker_flags_exactly_the_planted_defect(name, checker, synthetic_site):
    base, root = synthetic_site
    shot = root / "screenshots" / f"{name}.png"
    problems = checker.check(f"{base}{name}.html", f"{name}.html", shot)
    expected = SYNTHETIC[name][1]
    assert _kinds(problems) == expected, "\n".join(str(p) for p in problems) or "no problems found"
    assert all(p.page == f"{name}.html" for p in problems)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@rendered_book
def test_checker_reports_the_stated_and_decoded_durations(checker, synthetic_site):
    base, _ = synthetic_site
    (problem,) = checker.check(f"{base}audio_wrong_duration.html", "audio_wrong_duration.html")
    assert "decodes to 0.250 s" in problem.what and "1.250" in problem.what


@rendered_book
def test_checker_reports_the_failed_url(checker, synthetic_site):
    base, _ = synthetic_site
    (problem,) = checker.check(f"{base}missing_resource.html", "missing_resource.html")
    assert "404" in problem.what and problem.excerpt.endswith("/no-such-image.png")


# --- the built book ------------------------------------------------------------------------------------------------

def pytest_generate_tests(metafunc):
    if "book_page" in metafunc.fixturenames:
        site = _site_dir()
        pages = book_pages.html_pages(site) if site.is_dir() else []
        metafunc.parametrize("book_page", pages or [None], ids=pages or ["no-built-book"])


def _require_site() -> Path:
    site = _site_dir()
    if not (site / "index.html").is_file():
        _unavailable(f"no built book at {site}: build it first (`WAVELAB_QUICK=1 .venv/bin/jupyter-book build . "
                     "--builder html`), or point WAVELAB_BOOK_HTML at a built site")
    return site


@pytest.fixture(scope="module")
def book_site():
    """The built book served over localhost; yields (base URL, site folder)."""
    site = _require_site()
    with book_pages.serve(site) as base:
        yield base, site


@rendered_book
def test_every_chapter_of_the_toc_was_rendered():
    site = _require_site()
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for c in toc.get("chapters", [])]
    files += [s["file"] for part in toc.get("parts", []) for s in part.get("chapters", [])]
    missing = [f for f in files if not (site / f"{f}.html").is_file()]
    assert not missing, f"chapters in _toc.yml without a page in {site}: {missing}"
    pages = book_pages.html_pages(site)
    assert all(f"{f}.html" in pages for f in files)


@rendered_book
def test_rendered_page(book_page, checker, book_site):
    """One built page: no raw tables or maths, no console/network errors, no too-wide results table, every audio
    player decodes to its stated duration.  The screenshot is saved either way."""
    if book_page is None:
        _require_site()
        pytest.fail(f"the built book at {_site_dir()} has no pages")
    base, _ = book_site
    shot = _screenshot_dir() / Path(book_page).with_suffix(".png")
    problems = checker.check(base + book_page, book_page, shot)
    print(f"{book_page}: screenshot {_display(shot)}")
    assert not problems, (f"{len(problems)} problem(s) on {book_page} (screenshot: {_display(shot)}):\n"
                          + book_pages.format_problems(problems))


_FIRST_PAGE_JS = """() => {
  const tables = [...document.querySelectorAll("table.wavelab-table")].map(t => ({
    header: [...t.querySelectorAll("thead th")].map(th => th.textContent.trim()),
    rows: t.querySelectorAll("tbody tr").length}));
  const images = [...document.querySelectorAll(".cell_output img")].map(i => ({
    loaded: i.complete && i.naturalWidth > 0, width: i.naturalWidth}));
  return {tables, images};
}"""


@rendered_book
def test_the_first_page_shows_the_findings_table_and_the_headline_figure(checker, book_site):
    """The intro page, in the browser: the findings table has one row per chapter of
    wavelab.report.findings.TITLES and the columns the first page promises, and the headline figure has loaded."""
    from wavelab.report.findings import TITLES

    base, site = book_site
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    shown = checker.evaluate(f"{base}{toc['root']}.html", _FIRST_PAGE_JS)
    tables = [t for t in shown["tables"] if "verdict" in t["header"]]
    assert len(tables) == 1, shown["tables"]
    assert tables[0]["header"][:3] == ["chapter", "question", "the paper"] and tables[0]["rows"] == len(TITLES)
    assert shown["images"] and all(i["loaded"] and i["width"] > 300 for i in shown["images"]), shown["images"]
