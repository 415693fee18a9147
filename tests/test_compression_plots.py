"""Tests of wavelab.report.plots.compression: the code counts behind the lattice figure, and the figures' layout."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from wavelab.baselines import code_histogram  # noqa: E402
from wavelab.report.plots import compression as cplots  # noqa: E402
from wavelab.representations import get_representation  # noqa: E402


def test_the_lattice_counts_every_sample_once():
    pcm = [np.array([0, 1, 1, -1], np.int16), np.array([1, 5], np.int16)]
    for name in ("mulaw", "linear"):
        rep = get_representation(name)
        counts = code_histogram(rep.codes_from_pcm16(x) for x in pcm)
        assert counts.shape == (2**16,) and counts.sum() == 6
        assert counts[int(rep.codes_from_pcm16(np.array([1], np.int16))[0])] == 3
    # near zero one int16 step is one linear code but thousands of mu-law codes: the lattice the figure draws
    mulaw = get_representation("mulaw").codes_from_pcm16(np.array([0, 1], np.int16))
    assert int(mulaw[1] - mulaw[0]) > 3000


def test_lattice_figure_titles_the_counts():
    pcm = [np.array([0, 1, 2, 2, -3, 400], np.int16)]
    fig = cplots.lattice_figure(pcm, window=4)
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("mulaw: 5 of 65,536") for t in titles)
    assert any(t.startswith("linear: 5 of 65,536") for t in titles)


class _Curve:
    def __init__(self, bpf, is_bound=False):
        self.cpu_minutes = np.arange(len(bpf), dtype=float) + 1e-5  # the step-0 point lies just after 0 minutes
        self.steps = np.arange(len(bpf)) * 10
        self.bpf = np.asarray(bpf, dtype=float)
        self.is_bound = is_bound


def test_representation_curves_figure_lays_out_panels_and_hides_the_rest():
    panels = {f"model {i}": {"mulaw": _Curve([14, 13]), "pcm16": _Curve([10, 9], i == 1)} for i in range(4)}
    fig = cplots.representation_curves_figure(panels, {"FLAC": 7.4}, ncols=3)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 6 and len(visible) == 4
    assert [ax.get_title() for ax in visible] == list(panels)
    fig = cplots.representation_curves_figure(panels, log_minutes=("model 3",))
    scales = {ax.get_title(): ax.get_xscale() for ax in fig.axes if ax.get_visible()}
    assert scales == {"model 0": "linear", "model 1": "linear", "model 2": "linear", "model 3": "log"}
    # the initial model's point (0 minutes) cannot sit on a log axis: it is left out there
    drawn = [line for line in fig.axes[3].get_lines() if line.get_label() in ("mulaw", "pcm16")]
    assert len(drawn) == 2 and all(list(line.get_xdata()) == [1.0 + 1e-5] for line in drawn)


def test_pmf_figure_reports_the_bits_of_the_sample():
    from wavelab.distributions import DiscretizedMixtureLogistics

    dmol = DiscretizedMixtureLogistics(1, 16, representation=get_representation("pcm16"))
    params = torch.tensor([0.0, 0.0, -3.0])
    fig = cplots.pmf_figure(dmol, params, centre=0, half_width=50)
    bits = -float(dmol.log_prob(params.view(1, 3, 1), torch.tensor([[32768]]))) / np.log(2)
    assert f"costs {bits:.2f} bits" in fig.axes[0].get_title()
    assert bits > 0


def _figure(key, bits, speed, dataset="timit", by="the project"):
    from wavelab.report.codecs import CodecFigure

    return CodecFigure(key, key, dataset, "test", bits, speed, speed, by, "test")


def test_the_pareto_front_keeps_exactly_the_codecs_no_other_beats_on_both_axes():
    from wavelab.report.codecs import pareto_front

    figs = [_figure("fast-big", 9.0, 1e7), _figure("slow-small", 6.0, 1e3), _figure("dominated", 9.5, 1e5),
            _figure("middle", 7.0, 1e6), _figure("no-speed", 5.0, None)]
    front = [f.key for f in pareto_front(figs)]
    assert front == ["fast-big", "middle", "slow-small"]
    for f in figs:
        beaten = any(g.bits_per_sample < f.bits_per_sample and g.encode_samples_per_s > (f.encode_samples_per_s or 0)
                     for g in figs if g.encode_samples_per_s)
        assert (f.key in front) == (f.encode_samples_per_s is not None and not beaten)


def test_the_reference_table_and_figures_read_every_codec_of_the_benchmark():
    from wavelab.report.codecs import OUTSIDE, best_codec, load_codec_figures, reference_table

    figures = load_codec_figures() + [_figure("ours", 6.9, 3e4), _figure("ours", 8.5, 5e4, "librispeech")]
    sets = {"timit": "TIMIT", "librispeech": "LibriSpeech"}
    table = reference_table(figures, sets)
    assert len(table.rows) == len({f.key for f in figures})
    firsts = [float(r[1]) for r in table.rows if r[1]]
    assert firsts == sorted(firsts)  # fewest bits on the first set first
    assert best_codec(figures, "timit").measured_by == OUTSIDE  # the anchors' SAC --high
    fig = cplots.pareto_figure(figures, sets, ours=("ours",))
    assert [ax.get_title() for ax in fig.axes] == ["TIMIT", "LibriSpeech"]
    rows = [{"samples": 100, "rms_dbfs": -30.0, "corpus": c, "sex": s, "ours": 500, "flac": 600}
            for c in ("timit", "librispeech") for s in "FM"]
    fig = cplots.utterance_wins_figure(rows, "ours", {"flac": "FLAC"})
    assert fig.axes[0].get_title() == "ours minus FLAC"
