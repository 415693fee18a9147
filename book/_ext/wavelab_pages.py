"""A Sphinx extension of the book's own: two fixes to the pages the theme writes, so that a page opens in a browser
with no console error (the browser test, tests/test_rendered_book.py, fails on any).

* sphinx-thebe (loaded by Jupyter Book) registers its inline configuration script twice with Sphinx 7.4, and the
  second copy throws ``Identifier 'THEBE_JS_URL' has already been declared``: identical scripts are kept once.
* pydata-sphinx-theme logs ``Got invalid theme mode`` on a reader's first visit when no ``default_mode`` is set:
  the book's pages start in ``light`` mode unless the configuration chose one (the reader can switch).
"""

from __future__ import annotations


def _script_key(js) -> tuple:
    filename = getattr(js, "filename", js) or ""  # an inline script's filename is None or "" (both occur)
    attributes = getattr(js, "attributes", {}) or {}
    return (str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def _keep_each_script_once(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def _default_mode(app, pagename, templatename, context, doctree):
    if not context.get("default_mode"):
        context["default_mode"] = "light"


def setup(app):
    app.connect("html-page-context", _keep_each_script_once, priority=900)
    app.connect("html-page-context", _default_mode, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
