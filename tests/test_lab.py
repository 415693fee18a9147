"""``scripts/lab.sh``: reading the book in JupyterLab leaves the checkout clean. A notebook a running Jupyter server
saves with outputs, execution counts and the metadata JupyterLab adds is written back exactly as committed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.servers import free_port, wait_until_serving

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "scripts" / "jupyter_lab_config.py"


def _as_if_run(nb: dict) -> dict:
    """What JupyterLab sends when it saves a chapter a reader ran: outputs, counts, cell and notebook metadata."""
    nb = json.loads(json.dumps(nb))
    for i, cell in enumerate(nb["cells"]):
        cell["metadata"]["scrolled"] = True
        if cell["cell_type"] == "code":
            cell["execution_count"] = i + 1
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ran\n"]}]
            cell["metadata"]["execution"] = {"iopub.status.idle": "2026-12-07T12:00:00Z"}
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_lab_script_serves_localhost_with_the_stripping_config():
    script = (REPO / "scripts" / "lab.sh").read_text()
    assert "--config=scripts/jupyter_lab_config.py" in script and "--allow-root" in script
    assert 'c.ServerApp.ip = "127.0.0.1"' in CONFIG.read_text()
    assert "scripts/lab.sh" in (REPO / "README.md").read_text()


def test_a_chapter_saved_by_a_running_server_is_written_back_as_committed(tmp_path):
    chapter = REPO / "book" / "wavenet.ipynb"
    (tmp_path / "book").mkdir()
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(chapter, tmp_path / "book" / "wavenet.ipynb")
    shutil.copy(chapter, tmp_path / "elsewhere" / "wavenet.ipynb")
    port, token = free_port(), "wavelab-test"
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", f"--config={CONFIG}", f"--ServerApp.root_dir={tmp_path}",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False",
         "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "JUPYTER_NO_CONFIG": "1"})
    try:
        base = f"http://127.0.0.1:{port}/api/contents"

        def put(path: str, nb: dict) -> None:
            body = json.dumps({"type": "notebook", "format": "json", "content": nb}).encode()
            req = urllib.request.Request(f"{base}/{path}?token={token}", data=body, method="PUT",
                                         headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=30).read()

        wait_until_serving(f"{base}?token={token}", server)
        ran = _as_if_run(json.loads(chapter.read_text()))
        put("book/wavenet.ipynb", ran)
        put("elsewhere/wavenet.ipynb", ran)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert (tmp_path / "book" / "wavenet.ipynb").read_text() == chapter.read_text()
    kept = json.loads((tmp_path / "elsewhere" / "wavenet.ipynb").read_text())  # only the book is stripped
    assert any(c.get("outputs") for c in kept["cells"])
