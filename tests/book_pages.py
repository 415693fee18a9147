"""A real-browser check of rendered HTML pages (the built book in ``_build/html``): what a reader would see.

Each page is served over a localhost HTTP server (as in a real deployment, not ``file://``), opened in headless
Chromium (Debian's ``/usr/bin/chromium`` driven by the ``playwright`` Python package; Playwright's own browser
download is never used) and checked for

* ``markdown-table``: a raw markdown table in the visible text (``| a | b |`` rows, a ``|---|---|`` rule), the
  symptom of ``display(Markdown(table))`` parsed as CommonMark without the tables extension;
* ``raw-maths``: TeX left in the visible text (``$...$``, ``$$``, ``\\[``, ``\\(``, ``\\begin{``) outside code,
  ``pre`` and MathJax's own output, i.e. maths MathJax did not typeset (for instance because it comes from a CDN
  that an offline reader cannot reach); MathJax is given time to typeset first;
* ``console-error`` / ``page-error`` / ``network-error``: an error on the browser console, an uncaught exception, a
  resource that failed to load or answered with an HTTP error (nothing is blocked, so a request to the outside world
  fails on a closed network and shows up here: the book must be self-contained offline);
* ``wide-table``: a results table (``table.wavelab-table``, the class :mod:`wavelab.report.tables` gives every table)
  wider than the page's content column, even when it sits in a horizontally scrolling wrapper;
* ``audio``: an ``<audio>`` element without ``data-duration-s``, one that fails to decode, or one whose decoded
  ``duration`` differs from ``data-duration-s`` by more than 1 % or 0.02 s (whichever is larger).

:class:`PageChecker` returns these as :class:`Problem` objects (page, kind, what, excerpt) and can save a full-page
screenshot of each page.  :func:`missing_requirements` says what is missing (and how to install it) where the
browser cannot run.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import itertools
import math
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = os.environ.get("WAVELAB_CHROMIUM", "/usr/bin/chromium")
"""The Chromium executable (Debian's ``chromium`` package); ``WAVELAB_CHROMIUM`` overrides it."""

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
"""Launch flags that work as root on a closed network (no sandbox, no GPU, no background or update traffic)."""

VIEWPORT = {"width": 1280, "height": 900}
"""A desktop window: the width at which the content column and the results tables are compared."""

KINDS = ("markdown-table", "raw-maths", "console-error", "page-error", "network-error", "wide-table", "audio")

AUDIO_REL_TOL = 0.01
AUDIO_ABS_TOL_S = 0.02

_TIMEOUT_MS = 30_000           # page load
_SETTLE_MS = 3_000             # wait for the network to go quiet after load (no failure if it does not)
_MATHJAX_TIMEOUT_MS = 15_000   # MathJax's initial typesetting
_AUDIO_TIMEOUT_MS = 10_000     # every <audio> reaching loadedmetadata (or error)
_EXCERPT = 100


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rendered page: ``page`` (path relative to the site root), ``kind`` (one of
    :data:`KINDS`), ``what`` (a sentence) and ``excerpt`` (the offending text, URL or element)."""

    page: str
    kind: str
    what: str
    excerpt: str = ""

    def __str__(self) -> str:
        tail = f": {self.excerpt!r}" if self.excerpt else ""
        return f"{self.page}: [{self.kind}] {self.what}{tail}"


def format_problems(problems: list[Problem], per_kind: int = 6) -> str:
    """The problems as an indented list, grouped by kind in :data:`KINDS` order, at most ``per_kind`` of each kind
    shown (then how many more), so a page with maths that never typeset still reads as one screen."""
    lines = []
    for kind in sorted({p.kind for p in problems}, key=lambda k: KINDS.index(k) if k in KINDS else len(KINDS)):
        same = [p for p in problems if p.kind == kind]
        lines += [f"  - {p}" for p in same[:per_kind]]
        if len(same) > per_kind:
            lines.append(f"  - ... and {len(same) - per_kind} more [{kind}] problem(s) on {same[0].page}")
    return "\n".join(lines)


def missing_requirements() -> list[str]:
    """What the browser check lacks here, each with how to install it; empty when it can run."""
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the Python package playwright (install it with `pip install playwright`, or `bash "
                       "scripts/setup.sh`; do not run `playwright install`: the system Chromium is used)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"Chromium at {CHROMIUM} (install it with `apt-get install chromium`, or `bash "
                       "scripts/system_deps.sh` as root; or point WAVELAB_CHROMIUM at a Chromium executable)")
    return missing


_REDIRECT = re.compile(r"<meta[^>]+http-equiv=[\"']?refresh", re.IGNORECASE)


def redirect_target(path: str | os.PathLike) -> str | None:
    """The URL a redirect stub (a small page whose only job is a ``<meta http-equiv="refresh">``, like Jupyter
    Book's ``index.html``) sends the reader to; ``None`` for a real page."""
    path = Path(path)
    if path.stat().st_size > 4096:
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    if not _REDIRECT.search(text):
        return None
    m = re.search(r"url=([^\"'>\s]+)", text, re.IGNORECASE)
    return m.group(1) if m else ""


def html_pages(root: str | os.PathLike) -> list[str]:
    """The HTML pages of a built site, relative to ``root`` with ``/`` separators, sorted.  Sphinx's asset folders
    (``_static``, ``_sources``, ``_images``, any folder starting with ``_``) and redirect stubs
    (:func:`redirect_target`; their target is a page of its own) are skipped."""
    root = Path(root)
    pages = []
    for path in root.rglob("*.html"):
        rel = path.relative_to(root)
        if any(part.startswith(("_", ".")) for part in rel.parts[:-1]) or redirect_target(path) is not None:
            continue
        pages.append(rel.as_posix())
    return sorted(pages)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder without logging; a missing ``/favicon.ico`` (the browser's own request, not the page's)
    answers 204 No Content instead of a 404 that would show up as a console error."""

    def do_GET(self):
        if self.path == "/favicon.ico" and not Path(self.translate_path(self.path)).exists():
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format, *args):
        pass


@contextmanager
def serve(root: str | os.PathLike) -> Iterator[str]:
    """Serve the folder ``root`` over HTTP on a free localhost port (in a thread); yields the base URL
    (``http://127.0.0.1:PORT/``)."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="book-pages-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- text scan ---------------------------------------------------------------------------------------------------

# The visible text of the page, grouped by its nearest block-level element, with the source's line breaks kept
# (textContent, not innerText): a markdown table that was not parsed keeps one row per line.  Code, pre, MathJax's
# output and anything hidden are left out.
_VISIBLE_TEXT_JS = r"""
() => {
  const SKIP = 'script, style, noscript, template, textarea, pre, code, kbd, samp, .highlight, math, svg, '
             + 'mjx-container, mjx-assistive-mml, .MathJax, .MathJax_Display, .MathJax_Preview, .MathJax_SVG, '
             + '.MathJax_CHTML, .katex';
  const blocks = new Map();
  const order = [];
  const blockOf = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const d = getComputedStyle(e).display;
      if (!d.startsWith('inline') && d !== 'contents') return e;
    }
    return document.body;
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || !node.textContent.trim()) continue;
    if (parent.closest(SKIP)) continue;
    if (parent.checkVisibility && !parent.checkVisibility({checkVisibilityCSS: true})) continue;
    const block = blockOf(parent);
    if (!blocks.has(block)) { blocks.set(block, []); order.push(block); }
    blocks.get(block).push(node.textContent);
  }
  const describe = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                          + (typeof e.className === 'string' && e.className.trim()
                             ? '.' + e.className.trim().split(/\s+/).join('.') : '');
  return order.map((b) => ({where: describe(b), text: blocks.get(b).join('')}));
}
"""

# A rule cell is ---, or the em/en dash a typographer ("smartquotes") makes of it: |---|, ---|---, |—|—|
_RULE_CELL = r":?(?:-{3,}|[\u2014\u2013]+-*):?"
_TABLE_RULE = re.compile(rf"\|\s*{_RULE_CELL}\s*\||{_RULE_CELL}\s*\|\s*{_RULE_CELL}")
_TABLE_ROW = re.compile(r"^\s*\|(?:[^|\n]*\|){2,}\s*$")                       # | a | b |  (a whole line)
_TEX_PATTERNS = [
    ("$$", re.compile(r"\$\$")),
    ("\\[", re.compile(r"\\\[")),
    ("\\(", re.compile(r"\\\(")),
    ("\\begin{", re.compile(r"\\begin\{")),
    # Inline $...$ (Pandoc's rule: no space just inside either dollar, no digit right after the closing one), so that
    # "costs $5 or $10" is not maths.
    ("$...$", re.compile(r"(?<![\\$])\$(?=[^\s$])[^$\n]{0,400}?(?<=[^\s$\\])\$(?![\d$])")),
]


def _excerpt(text: str, start: int, end: int) -> str:
    lo = max(0, start - _EXCERPT // 3)
    hi = min(len(text), max(end, lo + _EXCERPT))
    return " ".join(text[lo:hi].split())


def scan_text(page: str, blocks: list[dict]) -> list[Problem]:
    """Raw markdown tables and raw TeX in the visible text ``blocks`` (``{"where", "text"}`` as the page reports
    them); one problem per kind and block, with the first match as the excerpt."""
    problems = []
    for block in blocks:
        text, where = block["text"], block["where"]
        lines = text.splitlines()
        rule = _TABLE_RULE.search(text)
        rows = [i for i, line in enumerate(lines) if _TABLE_ROW.match(line)]
        consecutive = any(b == a + 1 for a, b in itertools.pairwise(rows))
        if rule or consecutive:
            sample = "\n".join(lines[rows[0]:rows[0] + 3]) if rows else _excerpt(text, rule.start(), rule.end())
            problems.append(Problem(page, "markdown-table", f"raw markdown table in the text of <{where}> (a table "
                                    "rendered as text: markdown parsed without the tables extension?)", sample))
        for name, pattern in _TEX_PATTERNS:
            m = pattern.search(text)
            if m:
                problems.append(Problem(page, "raw-maths", f"raw TeX ({name}) in the text of <{where}> (maths not "
                                        "typeset: MathJax missing, blocked or failed?)",
                                        _excerpt(text, m.start(), m.end())))
                break
    return problems


# --- layout and media ------------------------------------------------------------------------------------------

_CONTENT_COLUMN_SELECTORS = ["#main-content .bd-article", "article.bd-article", ".bd-article", "main article",
                             "article", "[role=main]", "main", "body"]

_TABLE_WIDTHS_JS = r"""
(selectors) => {
  let column = null, selector = null;
  for (const s of selectors) { column = document.querySelector(s); if (column) { selector = s; break; } }
  const cs = getComputedStyle(column);
  const columnWidth = column.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  return {selector, columnWidth, tables: [...document.querySelectorAll('table.wavelab-table')].map((t, i) => ({
    index: i,
    width: Math.max(t.getBoundingClientRect().width, t.scrollWidth),
    head: (t.innerText || '').trim().split('\n')[0].slice(0, 100),
  }))};
}
"""

# Every <audio>: its stated duration, and what the browser decoded once loadedmetadata (or error) has fired.
_AUDIO_JS = r"""
async (timeoutMs) => {
  const audios = [...document.querySelectorAll('audio')];
  const settle = (a) => new Promise((resolve) => {
    if (a.readyState >= 1 || a.error) return resolve();
    a.addEventListener('loadedmetadata', () => resolve(), {once: true});
    a.addEventListener('error', () => resolve(), {once: true});
    for (const s of a.querySelectorAll('source')) s.addEventListener('error', () => resolve(), {once: true});
    if (a.preload === 'none') a.preload = 'metadata';
    if (a.networkState === HTMLMediaElement.NETWORK_EMPTY || a.networkState === HTMLMediaElement.NETWORK_IDLE) a.load();
  });
  await Promise.race([Promise.all(audios.map(settle)), new Promise((r) => setTimeout(r, timeoutMs))]);
  return audios.map((a, i) => ({
    index: i,
    stated: a.getAttribute('data-duration-s'),
    duration: Number.isFinite(a.duration) ? a.duration : String(a.duration),
    readyState: a.readyState,
    error: a.error ? `code ${a.error.code}${a.error.message ? ': ' + a.error.message : ''}` : null,
    src: (a.currentSrc || a.getAttribute('src') || '').slice(0, 60),
  }));
}
"""

_MATHJAX_JS = r"""
async (timeoutMs) => {
  const timeout = new Promise((r) => setTimeout(() => r('timeout'), timeoutMs));
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) return await Promise.race([mj.startup.promise.then(() => 'v3'), timeout]);
  if (mj && mj.Hub && mj.Hub.Queue) return await Promise.race([new Promise((r) => mj.Hub.Queue(() => r('v2'))), timeout]);
  return 'none';
}
"""


def check_tables(page: str, layout: dict) -> list[Problem]:
    """``wide-table`` problems from the measured widths (``_TABLE_WIDTHS_JS``): any ``table.wavelab-table`` wider
    than the content column (half a pixel of slack for rounding)."""
    problems = []
    for t in layout["tables"]:
        if t["width"] > layout["columnWidth"] + 0.5:
            problems.append(Problem(page, "wide-table", f"table.wavelab-table #{t['index']} is {t['width']:.0f} px "
                                    f"wide, the content column ({layout['selector']}) {layout['columnWidth']:.0f} px "
                                    f"(at a {VIEWPORT['width']} px window)", t["head"]))
    return problems


def check_audio(page: str, audios: list[dict]) -> list[Problem]:
    """``audio`` problems from what the browser decoded (``_AUDIO_JS``): a missing or unparsable
    ``data-duration-s``, a decode error, no metadata, or a duration off by more than 1 % or 0.02 s."""
    problems = []
    for a in audios:
        label = f"<audio> #{a['index']}"
        if a["error"]:
            problems.append(Problem(page, "audio", f"{label} failed to load or decode ({a['error']})", a["src"]))
            continue
        stated = a["stated"]
        try:
            stated_s = float(stated)
        except (TypeError, ValueError):
            stated_s = math.nan
        if not math.isfinite(stated_s) or stated_s <= 0:
            what = "has no data-duration-s" if stated is None else f"has an unusable data-duration-s={stated!r}"
            decoded = f"; it decodes to {a['duration']:.3f} s" if isinstance(a["duration"], (int, float)) else ""
            problems.append(Problem(page, "audio", f"{label} {what} (every player must state its duration{decoded})",
                                    a["src"]))
            continue
        duration = a["duration"]
        if a["readyState"] < 1 or not isinstance(duration, (int, float)):
            problems.append(Problem(page, "audio", f"{label} never loaded its metadata (duration {duration}, "
                                    f"readyState {a['readyState']}) within {_AUDIO_TIMEOUT_MS / 1000:.0f} s",
                                    a["src"]))
            continue
        tolerance = max(AUDIO_REL_TOL * stated_s, AUDIO_ABS_TOL_S)
        if abs(duration - stated_s) > tolerance:
            problems.append(Problem(page, "audio", f"{label} decodes to {duration:.3f} s but states "
                                    f"data-duration-s={stated} (tolerance {tolerance:.3f} s)", a["src"]))
    return problems


# --- the browser ---------------------------------------------------------------------------------------------------

class PageChecker:
    """One headless Chromium with one browser context, checking pages one after another.

    Use as a context manager; :meth:`check` opens one URL and returns its problems.  Raises ``RuntimeError`` naming
    what is missing when playwright or Chromium is not there (see :func:`missing_requirements`).
    """

    def __init__(self, executable: str = CHROMIUM):
        self.executable = executable
        self._pw = self._browser = self._context = None

    def __enter__(self) -> PageChecker:
        missing = missing_requirements()
        if missing:
            raise RuntimeError("cannot run the browser check; missing: " + "; ".join(missing))
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        try:
            self._browser = self._pw.chromium.launch(executable_path=self.executable, args=CHROMIUM_ARGS,
                                                     headless=True)
        except Exception as e:
            self._pw.stop()
            raise RuntimeError(f"Chromium at {self.executable} did not start: {e}") from e
        self._context = self._browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
        # Every page is checked as a first-time visitor sees it (empty storage), whatever was checked before it: an
        # error on a first visit shows on each page, not only on whichever page happens to be checked first.
        self._context.add_init_script("try { localStorage.clear(); sessionStorage.clear(); } catch (e) {}")
        return self

    def __exit__(self, *exc) -> None:
        from playwright.sync_api import Error as PlaywrightError

        for closer in (self._context, self._browser):
            if closer is not None:
                with suppress(PlaywrightError):  # a browser that already crashed cannot be closed again
                    closer.close()
        if self._pw is not None:
            self._pw.stop()

    def evaluate(self, url: str, script: str):
        """Open ``url``, let it settle, and return what the JavaScript function ``script`` returns there (for checks
        of one page's content, e.g. that the first page shows its table and figure)."""
        page = self._context.new_page()
        try:
            _settle(page, url)
            return page.evaluate(script)
        finally:
            page.close()

    def check(self, url: str, page_name: str, screenshot: str | os.PathLike | None = None) -> list[Problem]:
        """Open ``url`` (reported as ``page_name``), let it settle and MathJax typeset, and return every problem
        found; writes a full-page PNG to ``screenshot`` when given (parent folders created)."""
        problems: list[Problem] = []
        console: list[tuple[str, str]] = []
        failed_urls: set[str] = set()
        page = self._context.new_page()

        def on_console(msg):
            if msg.type == "error":
                console.append((msg.text, (msg.location or {}).get("url", "")))

        def on_request_failed(request):
            failed_urls.add(request.url)
            problems.append(Problem(page_name, "network-error", f"request failed ({request.failure})",
                                    request.url[:200]))

        def on_response(response):
            if response.status >= 400:
                failed_urls.add(response.url)
                problems.append(Problem(page_name, "network-error", f"HTTP {response.status} {response.status_text}",
                                        response.url[:200]))

        page.on("console", on_console)
        page.on("pageerror", lambda err: problems.append(
            Problem(page_name, "page-error", "uncaught exception", str(err)[:300])))
        page.on("requestfailed", on_request_failed)
        page.on("response", on_response)
        try:
            _settle(page, url)
            mathjax = page.evaluate(_MATHJAX_JS, _MATHJAX_TIMEOUT_MS)
            if mathjax == "timeout":
                problems.append(Problem(page_name, "raw-maths", f"MathJax did not finish typesetting within "
                                        f"{_MATHJAX_TIMEOUT_MS / 1000:.0f} s"))
            audios = page.evaluate(_AUDIO_JS, _AUDIO_TIMEOUT_MS)
            problems += scan_text(page_name, page.evaluate(_VISIBLE_TEXT_JS))
            problems += check_tables(page_name, page.evaluate(_TABLE_WIDTHS_JS, _CONTENT_COLUMN_SELECTORS))
            problems += check_audio(page_name, audios)
            if screenshot is not None:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            page.close()
        for text, where in console:
            # "Failed to load resource" repeats a network-error already reported with its URL
            if text.startswith("Failed to load resource") and where in failed_urls:
                continue
            problems.append(Problem(page_name, "console-error", f"console error{f' at {where}' if where else ''}",
                                    text[:300]))
        order = {k: i for i, k in enumerate(KINDS)}
        return sorted(problems, key=lambda p: order.get(p.kind, len(order)))


def _settle(page, url: str) -> None:
    """Load ``url`` in ``page`` and wait up to ``_SETTLE_MS`` for the network to go quiet (no failure if it does not)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(url, wait_until="load", timeout=_TIMEOUT_MS)
    try:
        page.wait_for_load_state("networkidle", timeout=_SETTLE_MS)
    except PlaywrightTimeout:
        pass


def check_site(root: str | os.PathLike, screenshots: str | os.PathLike | None = None,
               pages: list[str] | None = None) -> dict[str, list[Problem]]:
    """Check every page of the site in ``root`` (or just ``pages``, relative paths); returns page -> problems.
    Screenshots go to ``screenshots/<page>.png`` when a folder is given."""
    pages = html_pages(root) if pages is None else pages
    results = {}
    with serve(root) as base, PageChecker() as checker:
        for rel in pages:
            shot = None if screenshots is None else Path(screenshots) / Path(rel).with_suffix(".png")
            results[rel] = checker.check(base + rel, rel, shot)
    return results


if __name__ == "__main__":  # python tests/book_pages.py [_build/html]: a report, exit status 1 on any problem
    import sys

    site = Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html")
    found = check_site(site, site.parent / "screenshots")
    for name, probs in found.items():
        print(f"{name}: {len(probs)} problem(s)")
        if probs:
            print(format_problems(probs))
    sys.exit(1 if any(found.values()) else 0)
