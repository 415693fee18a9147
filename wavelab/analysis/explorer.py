"""An ipywidgets explorer of a stored latent study (:func:`wavelab.analysis.run_latent_study` /
:func:`wavelab.analysis.load_study`): pick a feature (z1, z2, mel), a label (phone, gender, height), a
cross-validation scheme (loo, loso) and k; it shows the LDA scatter coloured by label and the kNN accuracy.

Everything shown comes from the stored result, so it works from the JSON without the model.  Displayed, the explorer
is the live widget in JupyterLab and, in the HTML book (no kernel), its current figure (an embedded PNG) and summary
line with a note that changing them needs a running kernel (see :meth:`LatentExplorer.fallback_html`).
"""

from __future__ import annotations

import base64
import html
from typing import Any

import numpy as np

NO_KERNEL_NOTE = ("Changing the label, feature, scheme or k needs a running kernel: open this chapter as a notebook in "
                  "JupyterLab and run it.")

#: what the picture shows, next to it: which LDA draws it, and why its clusters can look cleaner than the accuracy
PICTURE_NOTE = ("The picture is the paper's protocol: an LDA fitted to all examples of this label, which has seen "
                "every label it separates. The accuracy above holds each example out and fits the LDA without it, so "
                "clusters that look perfectly separated here can still score low.")
TASK_TITLES = {"phone": "phone (one speaker)", "gender": "speaker sex", "height": "speaker height class"}
# the two chance levels of wavelab.analysis.knn.chance_accuracy, in words: the majority rule can score 0% when the
# held-out example's class is always the minority of its training fold (balanced classes, leave-one-out)
_CHANCE_NAMES = {"majority": "majority class of the training fold", "stratified": "stratified guess"}


class LatentExplorer:
    """Dropdowns for feature, label and scheme, a k slider, a summary line and the LDA scatter.

    Args:
        study: a :func:`run_latent_study` result or :func:`load_study` dict.
    Attributes:
        feature, label, scheme (``ipywidgets.Dropdown``), k (``ipywidgets.SelectionSlider``), summary
        (``ipywidgets.HTML``), image (``ipywidgets.Image`` holding the figure, drawn off-screen by
        :func:`wavelab.report.widgets.render_png`, so a callback on any thread cannot tear it), protocol (the
        note under it, :data:`PICTURE_NOTE`), widget (the whole ``VBox``), state (dict of the last
        :meth:`update`), png (PNG bytes of the current figure, 100 dpi).
    Raises:
        ValueError: ``study`` has no tasks.
    """

    def __init__(self, study: dict[str, Any]):
        import ipywidgets as w

        tasks = study.get("tasks") if isinstance(study, dict) else None
        if not tasks:
            raise ValueError("study must be a run_latent_study / load_study result with at least one task")
        self.study = study
        self.tasks = tasks
        first = next(iter(tasks.values()))
        self.label = w.Dropdown(options=[(TASK_TITLES.get(t, t), t) for t in tasks], description="label")
        self.feature = w.Dropdown(options=list(first["features"]), description="feature")
        self.scheme = w.Dropdown(options=list(first["schemes"]), description="scheme")
        self.k = w.SelectionSlider(options=self._ks(), description="k")
        self.summary = w.HTML()
        self.protocol = w.HTML(f"<em>{html.escape(PICTURE_NOTE)}</em>")
        self.image = w.Image(format="png", layout={"max_width": "100%"})
        self.state: dict[str, Any] = {}
        self.png = b""
        self._busy = False
        for control in (self.label, self.feature, self.scheme, self.k):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([w.HBox([self.label, self.feature, self.scheme]), self.k, self.summary, self.image,
                              self.protocol])
        self.update()

    def _accuracy(self) -> dict[int, float]:
        acc = self.tasks[self.label.value]["features"][self.feature.value]["accuracy"]
        return {int(k): v for k, v in acc.get(self.scheme.value, {}).items()}

    def _ks(self) -> list[int]:
        return sorted(self._accuracy()) or [1]

    def _sync_options(self) -> None:
        """Keep the feature / scheme / k choices valid for the chosen label (phones have ``loo`` only)."""
        task = self.tasks[self.label.value]
        for control, options in ((self.feature, list(task["features"])), (self.scheme, list(task["schemes"]))):
            if list(control.options) != options:
                keep = control.value if control.value in options else options[0]
                control.options = options
                control.value = keep
        ks = self._ks()
        if list(self.k.options) != ks:
            keep = self.k.value if self.k.value in ks else min(ks, key=lambda k: abs(k - (self.k.value or 1)))
            self.k.options = ks
            self.k.value = keep

    def update(self) -> dict[str, Any]:
        """Redraw for the current control values; returns and stores in :attr:`state` ``{"label", "feature",
        "scheme", "k", "accuracy" (float or None when that k was not evaluated), "chance" ({"majority",
        "stratified"}), "n" (examples), "classes"}``."""
        if self._busy:
            return self.state
        self._busy = True
        try:
            self._sync_options()
            task = self.tasks[self.label.value]
            acc = self._accuracy().get(int(self.k.value))
            chance = task.get("chance", {}).get(self.scheme.value, {})
            labels = np.asarray(task["labels"], dtype=str)
            self.state = {"label": self.label.value, "feature": self.feature.value, "scheme": self.scheme.value,
                          "k": int(self.k.value), "accuracy": acc, "chance": dict(chance), "n": len(labels),
                          "classes": sorted(set(labels.tolist()))}
            acc_text = "n/a" if acc is None else f"{100 * acc:.1f}%"
            chance_text = ", ".join(f"{_CHANCE_NAMES.get(name, name)} {100 * v:.1f}%" for name, v in chance.items())
            title = html.escape(str(TASK_TITLES.get(self.label.value, self.label.value)))
            self.summary.value = (f"<b>{title}</b> from "
                                  f"<b>{html.escape(str(self.feature.value))}</b>: "
                                  f"{html.escape(str(self.scheme.value))} kNN accuracy (k={self.k.value}) "
                                  f"<b>{acc_text}</b>; chance: {chance_text}; {len(labels)} examples, "
                                  f"{len(self.state['classes'])} classes")
            self._draw(task, labels)
        finally:
            self._busy = False
        return self.state

    def _draw(self, task: dict[str, Any], labels: np.ndarray) -> None:
        from matplotlib import colormaps

        from ..report.widgets import render_png

        emb = np.asarray(task["features"][self.feature.value]["embedding"], dtype=np.float64)
        classes, acc = self.state["classes"], self.state["accuracy"]
        title = (f"{TASK_TITLES.get(self.label.value, self.label.value)} in the LDA subspace of {self.feature.value}"
                 + ("" if acc is None else f" ({self.scheme.value} {self.k.value}-NN: {100 * acc:.1f}%)"))

        def draw(fig) -> None:
            ax = fig.subplots()
            cmap = colormaps["tab20"]
            markers = "o^sDvP*X"
            rng = np.random.default_rng(0)
            for i, c in enumerate(classes):
                pts = emb[labels == c]
                if emb.shape[1] >= 2:
                    x, y = pts[:, 0], pts[:, 1]
                else:  # one LDA direction (two classes): a strip plot, rows by class, jittered
                    x, y = pts[:, 0], i + rng.uniform(-0.25, 0.25, len(pts))
                ax.scatter(x, y, s=14, color=cmap(i % 20), marker=markers[(i // 20) % len(markers)], label=c,
                           alpha=0.8)
            ax.set_xlabel(f"LDA 1 ({self.feature.value})")
            if emb.shape[1] >= 2:
                ax.set_ylabel(f"LDA 2 ({self.feature.value})")
            else:
                ax.set_yticks(range(len(classes)), classes)
            ax.set_title(title)
            ax.legend(fontsize=7, ncol=1 + len(classes) // 16, loc="center left", bbox_to_anchor=(1.0, 0.5))
            fig.tight_layout()

        self.png = render_png(draw, figsize=(7, 4.5))
        self.image.value = self.png

    def fallback_html(self) -> str:
        """The static HTML shown where no kernel runs: the summary line, the current figure as an embedded PNG
        (``<img src="data:image/png;base64,...">``) and a note that changing them needs a kernel."""
        uri = "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")
        s = self.state
        alt = html.escape(f"{TASK_TITLES.get(s.get('label'), s.get('label'))} in the LDA subspace of {s.get('feature')}", quote=True)
        return (f'<div class="wavelab-fallback wavelab-latent-explorer"><p>{self.summary.value}</p>'
                f'<img src="{uri}" alt="{alt}" style="max-width: 100%"/><p><em>{html.escape(PICTURE_NOTE)}</em></p>'
                f'<p class="wavelab-fallback-note"><em>{html.escape(NO_KERNEL_NOTE)}</em></p></div>')

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        from ..report.widgets import widget_mimebundle

        s = self.state
        plain = (f"LatentExplorer(label={s.get('label')!r}, feature={s.get('feature')!r}, scheme={s.get('scheme')!r}, "
                 f"k={s.get('k')}, accuracy={s.get('accuracy')})")
        return widget_mimebundle(self.widget, self.fallback_html(), plain)
