"""JupyterLab settings of ``scripts/lab.sh``: reading the book's chapters never dirties the checkout.

Jupyter's contents manager calls :func:`strip_outputs` on every notebook it is about to save (autosave included):
under ``book/`` the outputs and execution counts go, cell metadata keeps only the tags the book's build reads, and the
notebook's metadata stays as the file on disk has it.  What is written is then the committed notebook plus the
reader's own edits to code and text.
"""

import json
import os

BOOK = "book/"
KEPT_CELL_METADATA = ("tags",)


def strip_outputs(model, path, contents_manager, **kwargs):
    """``FileContentsManager.pre_save_hook``: strip what running a chapter adds from a notebook under ``book/``."""
    if model.get("type") != "notebook" or not path.lstrip("/").startswith(BOOK):
        return
    nb = model["content"]
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k in KEPT_CELL_METADATA}
    on_disk = contents_manager._get_os_path(path)
    if os.path.exists(on_disk):
        with open(on_disk, encoding="utf-8") as f:
            nb["metadata"] = json.load(f).get("metadata", nb["metadata"])


c = get_config()  # noqa: F821  (the name Jupyter's config loader provides)
c.FileContentsManager.pre_save_hook = strip_outputs
c.ServerApp.ip = "127.0.0.1"
