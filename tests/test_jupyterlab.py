"""The listening room and the latent explorer as a reader uses them: the chapters opened in a real JupyterLab
(``scripts/jupyter_lab_config.py``, JupyterLab's default settings otherwise, so widget messages run on a kernel
subshell, ``commsOverSubshells``) in headless Chromium, in quick mode, Run All, then the controls used.

- The WaveNet chapter's room: 20 presses of *Generate* in a row; each gives a new player of the length the slider
  states and a waveform image that is the waveform of the audio it plays (drawn again here from the player's WAV:
  a torn or blank figure differs from it).
- The latents chapter's explorer: changing the feature redraws its picture.
- Saving the chapters (as JupyterLab's autosave does) writes them back exactly as committed.

Screenshots go to ``_build/screenshots/jupyterlab-*.png`` (``WAVELAB_BOOK_SCREENSHOTS`` overrides the folder).
Where Chromium or playwright is missing the test skips, naming what to install; under ``CI=true`` it fails.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import book_pages
from tests.servers import free_port, wait_until_serving

REPO = Path(__file__).resolve().parents[1]
PRESSES = 20
CHAPTER_TIMEOUT_MS = 600_000   # Run All of a chapter in quick mode on a busy machine
PRESS_TIMEOUT_MS = 120_000


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the JupyterLab check must run here)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab on localhost serving copies of two chapters under ``book/``; yields ``(url, folder)``."""
    missing = book_pages.missing_requirements()
    if missing:
        _unavailable("cannot open JupyterLab in a browser; missing: " + "; ".join(missing))
    root = tmp_path_factory.mktemp("lab")
    (root / "book").mkdir()
    for name in ("wavenet.ipynb", "latents.ipynb"):
        shutil.copy(REPO / "book" / name, root / "book" / name)
    port, token = free_port(), "wavelab-lab-test"
    env = {**os.environ, "WAVELAB_QUICK": "1", "OMP_WAIT_POLICY": "PASSIVE", "JUPYTER_NO_CONFIG": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", f"--config={REPO / 'scripts' / 'jupyter_lab_config.py'}",
         f"--ServerApp.root_dir={root}", f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
         "--ServerApp.open_browser=False", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(f"{url}/api/status?token={token}", server)
    # each chapter in a workspace of its own, reset: JupyterLab would otherwise restore the tabs of the last one
    yield f"{url}/lab/workspaces/{{0}}/tree/book/{{0}}.ipynb?reset&token={token}", root
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=book_pages.CHROMIUM, args=book_pages.CHROMIUM_ARGS,
                                      headless=True)
        yield chromium
        chromium.close()


def _screenshots() -> Path:
    folder = Path(os.environ.get("WAVELAB_BOOK_SCREENSHOTS") or REPO / "_build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _run_all(page, url: str, tries: int = 5) -> None:
    """Open the chapter and run all its cells.  Run All does nothing while the kernel is still connecting (the menu
    item is disabled then), which a busy machine makes likely: the command is repeated until a cell shows it runs
    (its prompt ``[*]`` or a number)."""
    page.goto(url)
    page.wait_for_selector(".jp-NotebookPanel", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator, .jp-Toolbar-kernelStatus", timeout=60_000)
    for _ in range(tries):
        page.locator(".jp-NotebookPanel .jp-Cell").first.click()  # the chapter is the active panel
        page.get_by_role("menuitem", name="Run").first.click()
        page.get_by_text("Run All Cells", exact=True).click()
        try:
            page.wait_for_function("() => Array.from(document.querySelectorAll('.jp-InputArea-prompt'))"
                                   ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))", timeout=60_000)
            return
        except Exception:  # noqa: BLE001  (playwright's TimeoutError: the kernel was not ready yet; try again)
            page.keyboard.press("Escape")
    pytest.fail(f"Run All did not start the chapter's cells at {url.split('?')[0]}")


def _pixels(png: bytes) -> np.ndarray:
    from matplotlib.image import imread

    return imread(io.BytesIO(png), format="png")[..., :3]


def _played_audio(figure_html: str) -> tuple[np.ndarray, float]:
    """The samples and the stated duration of an ``AudioPlayer``'s HTML."""
    import soundfile as sf

    wav = base64.b64decode(re.search(r'src="data:audio/wav;base64,([^"]+)"', figure_html).group(1))
    stated = float(re.search(r'data-duration-s="([0-9.]+)"', figure_html).group(1))
    audio, _ = sf.read(io.BytesIO(wav), dtype="float32")
    return audio, stated


def _image_bytes(page, img) -> bytes:
    """The bytes the browser shows in ``img`` (the widget's PNG, fetched from its blob URL)."""
    data = page.evaluate("""async (el) => {
        const blob = await (await fetch(el.src)).blob();
        const bytes = new Uint8Array(await blob.arrayBuffer());
        let s = ''; for (const b of bytes) s += String.fromCharCode(b);
        return btoa(s);
    }""", img.element_handle())
    return base64.b64decode(data)


def test_twenty_presses_in_the_wavenet_room_give_twenty_correct_players_and_waveforms(lab, browser):
    from wavelab.report.widgets import waveform_png

    url, root = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _run_all(page, url.format("wavenet"))
    button = page.locator("button.jupyter-button", has_text="Generate").first
    button.wait_for(state="attached", timeout=CHAPTER_TIMEOUT_MS)  # cells out of view are in the DOM, not shown
    button.scroll_into_view_if_needed()
    room = button.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][1]")
    model = room.locator("select").first.input_value()
    seconds = float(room.locator(".widget-readout").nth(1).inner_text())
    previous = ""
    for press in range(PRESSES):
        button.scroll_into_view_if_needed()
        button.click()
        page.wait_for_function("([el, prev]) => { const f = el.querySelector('figure.wavelab-audio'); "
                               "return f !== null && f.outerHTML !== prev; }",
                               arg=[room.element_handle(), previous], timeout=PRESS_TIMEOUT_MS)
        figure = room.locator("figure.wavelab-audio").first
        previous = figure.evaluate("el => el.outerHTML")
        audio, stated = _played_audio(previous)
        assert stated == pytest.approx(seconds) and len(audio) == round(seconds * 16000), press
        assert f"{seconds:.2f} s" in figure.inner_text()
        img = room.locator("img").first
        page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle())
        shown = _pixels(_image_bytes(page, img))
        expected = _pixels(waveform_png(audio, 16000, f"{model}, seed {press} (as played)"))
        assert shown.std() > 0.05, f"press {press}: a blank waveform"
        assert shown.shape == expected.shape and np.abs(shown - expected).mean() < 0.01, \
            f"press {press}: the waveform shown is not the one played"
        assert not button.is_disabled()
    room.screenshot(path=str(_screenshots() / "jupyterlab-wavenet-room.png"))
    page.keyboard.press("Control+s")
    page.wait_for_timeout(3000)
    assert (root / "book" / "wavenet.ipynb").read_text() == (REPO / "book" / "wavenet.ipynb").read_text()
    page.close()


def test_the_latent_explorer_redraws_when_a_control_changes(lab, browser):
    url, root = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _run_all(page, url.format("latents"))
    feature = page.locator(".widget-dropdown", has_text="feature").locator("select").first
    feature.wait_for(state="attached", timeout=CHAPTER_TIMEOUT_MS)
    feature.scroll_into_view_if_needed()
    explorer = feature.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][1]")
    img = explorer.locator("img").first
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle())
    before = _image_bytes(page, img)
    options = feature.locator("option").all_inner_texts()
    other = next(o for o in options if o != feature.input_value())
    feature.select_option(other)
    page.wait_for_function("([el, src]) => el.src !== src && el.complete && el.naturalWidth > 0",
                           arg=[img.element_handle(), img.get_attribute("src")], timeout=PRESS_TIMEOUT_MS)
    after = _image_bytes(page, img)
    assert after != before and _pixels(after).std() > 0.05
    assert "fitted to all examples" in explorer.inner_text()
    explorer.screenshot(path=str(_screenshots() / "jupyterlab-latent-explorer.png"))
    page.close()
