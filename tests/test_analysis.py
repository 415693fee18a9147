"""The latent-study toolkit: span averaging, Mel features, LDA + kNN under leave-one-out and leave-one-speaker-out,
height classes, latent extraction (with a fake CW-VAE), the whole study on synthetic speech, save/load, the explorer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.model_selection import LeaveOneOut, cross_val_score  # noqa: E402

from sklearn.neighbors import KNeighborsClassifier  # noqa: E402

from wavelab.analysis import (LDA_FITS, PROTOCOL_KEYS, LatentExplorer, chance_accuracy,  # noqa: E402
                              extract_latents, height_class, knn_accuracy, lda_embed, load_study, make_knn_pipeline,
                              make_reducer, mel_features, mel_offset, phone_dataset, protocol_table,
                              run_latent_study, save_study, span_average, step_centres, time_average,
                              utterance_dataset)
from wavelab.audio import codes_to_companded  # noqa: E402
from wavelab.data import Recording  # noqa: E402
from wavelab.data.utterance import Segment, Speaker  # noqa: E402
from wavelab.models import WavelabModel, build_model, quick_config  # noqa: E402
from wavelab.representations import get_representation  # noqa: E402

torch.set_num_threads(1)


# --------------------------------------------------------------------------------------------------------------------
# test doubles


class FakeCWVAE(WavelabModel):
    """posterior_latents with the CW-VAE's contract: per layer [B, n_l, Dz] step statistics of the companded input
    (mean, mean |y|, mean |diff|), plus Gaussian noise / sqrt(num_samples); pads T to a multiple of the top stride
    (so it returns extra steps that extract_latents must trim)."""

    def __init__(self, strides=(8, 32), bits=8, noise=0.0):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.strides = list(strides)
        self.bits = bits
        self.representation = get_representation("mulaw", bits)  # the contract: every model has one
        self.noise = noise
        self.calls = []

    has_posterior_latents = True

    @property
    def latent_strides(self):
        return self.strides

    def step_stats(self, codes: torch.Tensor, s: int) -> torch.Tensor:
        y = codes_to_companded(codes, self.bits)
        B, T = y.shape
        T_pad = math.ceil(T / self.strides[-1]) * self.strides[-1]
        y = torch.nn.functional.pad(y, (0, T_pad - T))
        steps = y.reshape(B, T_pad // s, s)
        diff = (steps[..., 1:] - steps[..., :-1]).abs().mean(-1)
        return torch.stack([steps.mean(-1), steps.abs().mean(-1), diff], dim=-1)

    def posterior_latents(self, codes, lengths, num_samples=100, generator=None):
        self.calls.append({"shape": tuple(codes.shape), "lengths": lengths.tolist(), "num_samples": num_samples,
                           "inference": torch.is_inference_mode_enabled(), "training": self.training})
        out = []
        for s in self.strides:
            z = self.step_stats(codes, s)
            if self.noise:
                z = z + self.noise * torch.randn(z.shape, generator=generator) / math.sqrt(num_samples)
            out.append(z)
        return out


@dataclass(eq=False)
class FakeUtt(Recording):
    """A PCM utterance with the speaker and phone segments the latent study reads."""

    speaker: Speaker | None = None
    phones: tuple = ()


PHONE_HZ = {"aa": 300.0, "m": 1200.0, "s": 5000.0}


def synthetic_corpus(seed=0):
    """4 speakers x 3 utterances of tone 'phones' (one frequency per phone) between h# silences."""
    rng = np.random.default_rng(seed)
    speakers = [Speaker("dr1-fa", "timit", "F", 160.02), Speaker("dr1-mb", "timit", "M", 170.18),
                Speaker("dr2-fc", "timit", "F", 180.34), Speaker("dr2-md", "timit", "M", 190.5)]
    utts = []
    for spk in speakers:
        for j in range(3):
            pieces, phones, t = [np.zeros(200)], [Segment(0, 200, "h#")], 200
            for label in rng.permutation(list(PHONE_HZ) * 2):
                n = int(rng.integers(300, 600))
                pieces.append(0.3 * np.sin(2 * np.pi * PHONE_HZ[label] * np.arange(n) / 16000))
                phones.append(Segment(t, t + n, str(label)))
                t += n
            pieces.append(np.zeros(200))
            phones.append(Segment(t, t + 200, "h#"))
            pcm = (np.concatenate(pieces) * 32767).astype(np.int16)
            utts.append(FakeUtt(f"{spk.id}/sx{j}", pcm, speaker=spk, phones=tuple(phones)))
    return utts


# --------------------------------------------------------------------------------------------------------------------
# span averaging and Mel features


def test_span_average_is_the_duration_weighted_mean():
    f = np.array([[0.0, 1.0], [10.0, 2.0], [20.0, 3.0], [30.0, 4.0], [40.0, 5.0]])  # 5 steps of 10 samples
    segs = [Segment(0, 10, "a"),      # exactly step 0
            Segment(5, 25, "b"),      # 5 samples of step 0, 10 of step 1, 5 of step 2
            Segment(33, 33, "c"),     # empty: the step holding sample 33
            Segment(60, 70, "d"),     # past the grid: the last step
            Segment(12, 14, "e")]     # inside one step
    X, labels = span_average(f, 10, segs)
    assert labels == ["a", "b", "c", "d", "e"]
    np.testing.assert_allclose(X[0], f[0])
    np.testing.assert_allclose(X[1], 0.25 * f[0] + 0.5 * f[1] + 0.25 * f[2])
    np.testing.assert_allclose(X[2], f[3])
    np.testing.assert_allclose(X[3], f[4])
    np.testing.assert_allclose(X[4], f[1])
    Xu, _ = span_average(f, 10, segs, weighted=False)  # plain mean of the overlapping steps
    np.testing.assert_allclose(Xu[1], (f[0] + f[1] + f[2]) / 3)
    # a negative offset shifts the grid: step i covers [i*10 - 5, i*10 + 5)
    Xo, _ = span_average(f, 10, [Segment(5, 15, "x"), Segment(0, 5, "y")], offset=-5)
    np.testing.assert_allclose(Xo[0], f[1])
    np.testing.assert_allclose(Xo[1], f[0])
    np.testing.assert_allclose(time_average(f), f.mean(0))
    with pytest.raises(ValueError, match="step"):
        span_average(f, 0, segs)
    with pytest.raises(ValueError, match="features"):
        span_average(f[0], 10, segs)


def test_mel_shape_hop_and_alignment():
    T = 16000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(T) / 16000)).astype(np.float32)
    m = mel_features(tone)
    assert m.shape == (1 + T // 64, 80) and m.dtype == np.float32
    loud = m > -60  # int16 is read as x / 32768 (compare where quantisation noise does not matter)
    np.testing.assert_allclose(mel_features((tone * 32768).astype(np.int16))[loud], m[loud], atol=0.05)
    import librosa

    centres = librosa.mel_frequencies(n_mels=80, fmax=8000)
    assert abs(centres[m[100].argmax()] - 1000) < 150  # the tone's bin
    # a burst in samples [8000, 8064) lights the frames centred there, and span averaging on the mel grid finds it
    burst = np.zeros(T, dtype=np.float32)
    burst[8000:8064] = 0.5 * np.sin(2 * np.pi * 2000 * np.arange(64) / 16000)
    mb = mel_features(burst)
    assert abs(int(mb.mean(1).argmax()) - 8032 // 64) <= 1
    assert step_centres(3, 64, mel_offset(64)).tolist() == [0.0, 64.0, 128.0]
    X, _ = span_average(mb, 64, [Segment(8000, 8064, "burst"), Segment(4000, 4064, "quiet")], offset=mel_offset(64))
    assert X[0].mean() > X[1].mean() + 30  # dB
    with pytest.raises(ValueError, match="window"):
        mel_features(np.zeros(100, dtype=np.float32))
    with pytest.raises(ValueError, match="one waveform"):
        mel_features(np.zeros((2, 1000), dtype=np.float32))


# --------------------------------------------------------------------------------------------------------------------
# LDA + kNN


def blobs(n_per_class, n_classes, dim, sep, rng):
    centres = rng.normal(0, sep, (n_classes, dim))
    X = np.concatenate([c + rng.normal(0, 1, (n_per_class, dim)) for c in centres])
    return X, np.repeat([f"c{i}" for i in range(n_classes)], n_per_class)


def test_knn_separable_far_above_chance_random_near_chance():
    rng = np.random.default_rng(0)
    X, y = blobs(20, 4, 6, 6.0, rng)
    acc = knn_accuracy(X, y, ks=[1, 5], n_components=5)
    assert set(acc) == {1, 5} and min(acc.values()) > 0.95
    Xr = rng.normal(size=(80, 6))
    yr = rng.permutation(np.repeat(["a", "b", "c", "d"], 20))
    acc_r = knn_accuracy(Xr, yr, ks=[1, 5])
    chance = chance_accuracy(yr, strategy="stratified")
    assert chance == pytest.approx(19 / 79)
    assert all(abs(a - chance) < 0.2 for a in acc_r.values())
    emb = lda_embed(X, y)
    assert emb.shape == (80, 2)
    assert lda_embed(X[:40], y[:40]).shape == (40, 1)  # two classes: one LDA direction


def test_knn_accuracy_matches_the_pipeline_evaluated_fold_by_fold():
    rng = np.random.default_rng(1)
    X, y = blobs(10, 3, 4, 1.5, rng)  # overlapping classes, so errors occur
    ours = knn_accuracy(X, y, ks=[1, 3, 7], n_components=2)
    for k in (1, 3, 7):
        ref = cross_val_score(make_knn_pipeline(k, n_components=2), X, y, cv=LeaveOneOut()).mean()
        assert ours[k] == pytest.approx(ref)
    assert 0.3 < ours[1] < 1.0


def test_loso_never_sees_the_tested_speaker():
    rng = np.random.default_rng(2)
    n_spk, per = 16, 5
    groups = np.repeat([f"spk{i}" for i in range(n_spk)], per)
    dim = 24  # more dimensions than speakers: any split of the speakers is linearly separable
    centres = rng.normal(0, 4.0, (n_spk, dim))
    X = centres[np.repeat(np.arange(n_spk), per)] + rng.normal(0, 0.3, (n_spk * per, dim))
    # label = speaker identity: loo finds the speaker's other utterances; loso cannot (the class is never trained)
    assert knn_accuracy(X, groups, ks=[1, 3], groups=groups, scheme="loo")[1] > 0.95
    assert knn_accuracy(X, groups, ks=[1, 3], groups=groups, scheme="loso") == {1: 0.0, 3: 0.0}
    # a binary label that only marks the speaker: perfect loo, chance-level loso (averaged over a few draws, since
    # with 16 speakers one draw's loso accuracy is noisy)
    loso_runs = []
    for seed in range(5):
        r = np.random.default_rng(10 + seed)
        Xs = r.normal(0, 4.0, (n_spk, dim))[np.repeat(np.arange(n_spk), per)] + r.normal(0, 0.3, (n_spk * per, dim))
        y = np.array(["A", "B"] * (n_spk // 2))[r.permutation(n_spk)][np.repeat(np.arange(n_spk), per)]
        assert min(knn_accuracy(Xs, y, ks=[1, 3], groups=groups, scheme="loo").values()) > 0.95
        loso_runs.append(knn_accuracy(Xs, y, ks=[1], groups=groups, scheme="loso")[1])
    assert np.mean(loso_runs) < 0.65
    with pytest.raises(ValueError, match="groups"):
        knn_accuracy(X, y, ks=[1], scheme="loso")
    with pytest.raises(ValueError, match="scheme"):
        knn_accuracy(X, y, ks=[1], scheme="kfold")
    with pytest.raises(ValueError, match="k=80"):
        knn_accuracy(X, y, ks=[80], groups=groups, scheme="loso")
    with pytest.raises(ValueError, match="two classes"):
        knn_accuracy(X, np.zeros(len(X)), ks=[1])


def test_lda_fitted_on_all_rows_separates_random_labels_when_d_is_near_n():
    """The leak the paper's protocol has: 60 rows of noise in 50 dimensions, 3 random balanced classes. LDA fitted
    to all rows finds a subspace where every class sits apart, so leave-one-out kNN scores almost 100%; fitted inside
    each fold it stays at chance. With 5 dimensions there is little room to overfit and both are near chance."""
    assert LDA_FITS == ("fold", "all")
    rng = np.random.default_rng(3)
    y = rng.permutation(np.repeat(["a", "b", "c"], 20))
    chance = chance_accuracy(y, strategy="stratified")  # 19 / 59
    groups = np.repeat([f"s{i}" for i in range(12)], 5)
    X = rng.normal(size=(60, 50))
    for scheme in ("loo", "loso"):
        leaky = knn_accuracy(X, y, ks=[1, 5], groups=groups, scheme=scheme, lda_fit="all")
        fair = knn_accuracy(X, y, ks=[1, 5], groups=groups, scheme=scheme, lda_fit="fold")
        assert min(leaky.values()) > 0.9, (scheme, leaky)
        assert all(abs(a - chance) < 0.2 for a in fair.values()), (scheme, fair)
    assert knn_accuracy(X, y, ks=[1]) == knn_accuracy(X, y, ks=[1], lda_fit="fold")  # the default is "fold"
    low = rng.normal(size=(60, 5))
    assert max(knn_accuracy(low, y, ks=[1, 5], lda_fit="all").values()) < chance + 0.25
    # more dimensions, more leak: the "all" accuracy of the same noise rises with D
    by_dim = [np.mean(list(knn_accuracy(X[:, :d], y, ks=[1, 5], lda_fit="all").values())) for d in (5, 25, 50)]
    assert by_dim[0] < by_dim[1] < by_dim[2]


def test_lda_fit_all_is_one_projection_then_leave_one_out_knn():
    rng = np.random.default_rng(4)
    X, y = blobs(10, 3, 4, 1.5, rng)  # overlapping classes, so errors occur
    Z = make_reducer(2).fit_transform(X, y)  # fitted once to every row and label
    ours = knn_accuracy(X, y, ks=[1, 3, 7], n_components=2, lda_fit="all")
    for k in (1, 3, 7):
        ref = cross_val_score(KNeighborsClassifier(n_neighbors=k), Z, y, cv=LeaveOneOut()).mean()
        assert ours[k] == pytest.approx(ref)


def test_both_protocols_agree_on_well_separated_classes():
    rng = np.random.default_rng(5)
    X, y = blobs(20, 4, 6, 8.0, rng)
    groups = np.tile([f"s{i}" for i in range(10)], 8)
    for scheme in ("loo", "loso"):
        fold = knn_accuracy(X, y, ks=[1, 5], groups=groups, scheme=scheme, lda_fit="fold")
        all_ = knn_accuracy(X, y, ks=[1, 5], groups=groups, scheme=scheme, lda_fit="all")
        assert min(fold.values()) > 0.95 and min(all_.values()) > 0.95
        assert all(abs(fold[k] - all_[k]) <= 0.025 for k in (1, 5))


def test_unknown_lda_protocol_is_refused():
    X, y = blobs(5, 2, 3, 4.0, np.random.default_rng(6))
    for bad in ("train", "ALL", None):
        with pytest.raises(ValueError, match="lda_fit"):
            knn_accuracy(X, y, ks=[1], lda_fit=bad)


def test_chance_levels():
    y = np.array(["a"] * 6 + ["b"] * 6)
    assert chance_accuracy(y, strategy="majority") == 0.0  # leave-one-out pathology with balanced classes
    assert chance_accuracy(y, strategy="stratified") == pytest.approx(5 / 11)
    y2 = np.array(["a"] * 9 + ["b"] * 3)
    assert chance_accuracy(y2) == pytest.approx(9 / 12)
    groups = np.repeat(["s1", "s2", "s3", "s4"], 3)  # s1..s3 say "a", s4 says "b"
    assert chance_accuracy(y2, groups, scheme="loso") == pytest.approx(9 / 12)
    with pytest.raises(ValueError, match="strategy"):
        chance_accuracy(y, strategy="uniform")


def test_height_classes_at_the_boundaries():
    assert height_class(174.99) == "<175"
    assert height_class(175.0) == "175-185"
    assert height_class(185.0) == "175-185"
    assert height_class(185.01) == ">185"
    # whole inches as TIMIT gives them: 5'8", 5'9", 6'0", 6'1"
    assert [height_class(i * 2.54) for i in (68, 69, 72, 73)] == ["<175", "175-185", "175-185", ">185"]
    for bad in (None, float("nan"), -3.0):
        with pytest.raises(ValueError, match="height_cm"):
            height_class(bad)


# --------------------------------------------------------------------------------------------------------------------
# extraction and data sets


def test_extract_latents_with_a_fake_model():
    utts = synthetic_corpus()[:3]
    model = FakeCWVAE(strides=(8, 32)).train()
    feats = extract_latents(model, utts, num_samples=7)
    assert model.training  # mode restored
    assert len(model.calls) == 3
    for call, utt, f in zip(model.calls, utts, feats):
        T = utt.num_samples
        assert call == {"shape": (1, T), "lengths": [T], "num_samples": 7, "inference": True, "training": False}
        assert set(f) == {"z1", "z2"}
        assert f["z1"].shape == (math.ceil(T / 8), 3) and f["z2"].shape == (math.ceil(T / 32), 3)
        expected = model.step_stats(utt.codes(8)[None], 8)[0, : math.ceil(T / 8)].numpy()
        np.testing.assert_allclose(f["z1"], expected, atol=1e-6)
    noisy = FakeCWVAE(noise=1.0)
    a = extract_latents(noisy, utts[:1], num_samples=4, seed=3)[0]["z1"]
    b = extract_latents(noisy, utts[:1], num_samples=4, seed=3)[0]["z1"]
    c = extract_latents(noisy, utts[:1], num_samples=4, seed=4)[0]["z1"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(ValueError, match="num_samples"):
        extract_latents(model, utts, num_samples=0)
    with pytest.raises(ValueError, match="posterior_latents"):
        extract_latents(build_model("lstm", config=quick_config("lstm")), utts)


def test_phone_and_utterance_datasets():
    utts = synthetic_corpus()
    feats = [{"z1": np.arange(u.num_samples // 8 + 1, dtype=float)[:, None].repeat(2, 1)} for u in utts]
    X, y, groups = phone_dataset(feats[:3], utts[:3], "z1", step=8, min_count=1)
    assert "h#" not in set(y) and len(y) == 3 * 6 and set(groups) == {u.id for u in utts[:3]}
    first = utts[0].phones[1]  # the first non-silence phone, a [start, end) span on an 8-sample grid
    assert X[0, 0] == pytest.approx(np.mean(np.arange(first.start, first.end) // 8))
    X2, y2, _ = phone_dataset(feats[:3], utts[:3], "z1", step=8, exclude=("h#", "s"), min_count=6)
    assert set(y2) == {"aa", "m"}
    with pytest.raises(ValueError, match="min_count"):
        phone_dataset(feats[:1], utts[:1], "z1", step=8, min_count=100)
    with pytest.raises(ValueError, match="missing"):
        phone_dataset(feats[:1], utts[:1], "z9", step=8)
    data = utterance_dataset(feats, utts, "z1")
    assert data.X.shape == (12, 2)
    assert data.sex.tolist() == ["F"] * 3 + ["M"] * 3 + ["F"] * 3 + ["M"] * 3
    assert data.height.tolist()[::3] == ["<175", "<175", "175-185", ">185"]
    assert list(dict.fromkeys(data.groups)) == ["dr1-fa", "dr1-mb", "dr2-fc", "dr2-md"]


# --------------------------------------------------------------------------------------------------------------------
# the whole study, its file, and the explorer


@pytest.fixture(scope="module")
def study():
    utts = synthetic_corpus()
    model = FakeCWVAE(strides=(64, 512), noise=0.05)
    return run_latent_study(model, ks=(1, 3), num_samples=2, min_count=2, phone_utterances=utts[:3],
                            speaker_utterances=utts, height_sex=None)


def test_run_latent_study_structure(study):
    tasks = study["tasks"]
    assert set(tasks) == {"phone", "gender", "height"}
    assert study["settings"]["features"] == ["z1", "z2", "mel"]
    assert study["settings"]["grid"]["mel"] == {"step": 64.0, "offset": -32.0}
    for name, task in tasks.items():
        n = len(task["labels"])
        assert len(task["groups"]) == n
        for feat in task["features"].values():
            assert feat["embedding"].shape[0] == n == feat["n"]
            for key in PROTOCOL_KEYS.values():  # both protocols, same schemes and k
                assert set(feat[key]) == set(task["schemes"])
                for acc in feat[key].values():
                    assert set(acc) == {1, 3} and all(0.0 <= a <= 1.0 for a in acc.values())
    assert PROTOCOL_KEYS == {"fold": "accuracy", "all": "accuracy_lda_all"}
    assert study["tasks"]["phone"]["features"]["mel"]["dim"] == 80
    assert study["tasks"]["gender"]["features"]["z1"]["dim"] == 3  # the fake model's step statistics
    assert tasks["phone"]["schemes"] == ["loo"] and len(tasks["phone"]["labels"]) == 18
    assert tasks["gender"]["features"]["mel"]["embedding"].shape == (12, 1)  # two classes, one LDA direction
    assert tasks["phone"]["features"]["mel"]["accuracy"]["loo"][1] > 0.9  # tones are separable in Mel bins
    assert sorted(set(tasks["height"]["labels"])) == ["175-185", "<175", ">185"]


def test_quick_study_restricts_height_to_one_sex():
    utts = synthetic_corpus()
    extra = FakeUtt("dr2-md/sx9", utts[-1].pcm, speaker=utts[-1].speaker, phones=utts[-1].phones)  # a 4th utterance of dr2-md
    model = FakeCWVAE(strides=(64, 512))
    result = run_latent_study(model, ks=(1,), num_samples=100, quick=True, min_count=2, phone_utterances=utts[:3],
                              speaker_utterances=utts + [extra], height_sex="M")
    assert result["settings"]["num_samples"] == 4 and {c["num_samples"] for c in model.calls} == {4}
    assert result["settings"]["utterances"]["speaker"] == 12  # quick: 3 utterances per speaker
    assert len(result["tasks"]["gender"]["labels"]) == 12
    assert len(model.calls) == 12  # each distinct utterance extracted once (the phone speaker's are among them)
    assert set(result["tasks"]["height"]["groups"]) == {"dr1-mb", "dr2-md"}
    assert set(result["tasks"]["gender"]["groups"]) == {"dr1-fa", "dr1-mb", "dr2-fc", "dr2-md"}
    with pytest.raises(ValueError, match="height_sex"):
        run_latent_study(FakeCWVAE(), height_sex="X", phone_utterances=utts, speaker_utterances=utts)


def test_save_load_round_trip(study, tmp_path):
    path = save_study(study, tmp_path / "sub" / "study.json", provenance={"run_dir": "runs/cwvae"})
    back = load_study(path)
    assert back["provenance"]["run_dir"] == "runs/cwvae" and "hash" in back["provenance"]["commit"]
    assert back["settings"] == study["settings"]
    for name, task in study["tasks"].items():
        got = back["tasks"][name]
        assert got["labels"] == task["labels"] and got["groups"] == task["groups"]
        assert got["chance"] == task["chance"]
        for feat, val in task["features"].items():
            assert got["features"][feat]["accuracy"] == val["accuracy"]  # int k keys again
            assert got["features"][feat]["accuracy_lda_all"] == val["accuracy_lda_all"]
            np.testing.assert_allclose(got["features"][feat]["embedding"], val["embedding"])
    (tmp_path / "bad.json").write_text("{}")
    ex = LatentExplorer(back)  # the explorer works from the stored file alone
    ex.label.value = "height"
    assert ex.state["accuracy"] == study["tasks"]["height"]["features"]["z1"]["accuracy"]["loo"][1]
    with pytest.raises(ValueError, match="latent study"):
        load_study(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="run_latent_study"):
        save_study({"tasks": {}}, tmp_path / "x.json")


def test_a_study_made_before_the_all_protocol_still_loads(study, tmp_path):
    import json

    path = save_study(study, tmp_path / "old.json")
    doc = json.loads(path.read_text())
    for task in doc["tasks"].values():
        for feat in task["features"].values():
            for key in ("accuracy_lda_all", "n", "dim"):
                del feat[key]
    path.write_text(json.dumps(doc))
    old = load_study(path)
    for name, task in study["tasks"].items():
        for feat, val in task["features"].items():
            assert old["tasks"][name]["features"][feat]["accuracy"] == val["accuracy"]
    assert "accuracy_lda_all" not in old["tasks"]["phone"]["features"]["mel"]
    with pytest.raises(ValueError, match="again"):
        protocol_table(old)


def test_protocol_table_shows_both_protocols_of_the_study(study):
    tab = protocol_table(study, ks=(1, 3), caption="both")
    assert tab.columns == ["task", "scheme", "feature", "N × D", "k=1 fold", "k=1 all", "k=3 fold", "k=3 all",
                           "all − fold", "chance"]
    assert len(tab.rows) == 3 * (1 + 2 + 2)  # features x (phone: loo; sex, height: loo and loso)
    assert set(tab.column("task")) == {"phone", "sex", "height"}
    for row in tab.rows:
        task = study["tasks"]["gender" if row[0] == "sex" else row[0]]
        feat = task["features"][row[2]]
        assert row[3] == f"{feat['n']} × {feat['dim']}"
        for k in (1, 3):
            for p, key in PROTOCOL_KEYS.items():
                assert row[tab.columns.index(f"k={k} {p}")] == f"{100 * feat[key][row[1]][k]:.1f}"
        diff = np.mean([feat["accuracy_lda_all"][row[1]][k] - feat["accuracy"][row[1]][k] for k in (1, 3)])
        assert row[-2] == f"{100 * diff:+.1f}"
        assert row[-1] == f"{100 * task['chance'][row[1]]['stratified']:.1f}"
    assert "<table" in tab._repr_html_() and "|---" not in tab._repr_html_()


def test_explorer_follows_its_controls(study):
    ex = LatentExplorer(study)
    assert ex.state["label"] == "phone" and ex.state["scheme"] == "loo"
    assert list(ex.scheme.options) == ["loo"]
    assert ex.state["accuracy"] == study["tasks"]["phone"]["features"]["z1"]["accuracy"]["loo"][1]
    ex.label.value = "gender"  # the scheme dropdown now offers leave-one-speaker-out
    assert list(ex.scheme.options) == ["loo", "loso"]
    ex.scheme.value = "loso"
    ex.feature.value = "mel"
    ex.k.value = 3
    want = study["tasks"]["gender"]["features"]["mel"]["accuracy"]["loso"][3]
    assert ex.state == {**ex.state, "label": "gender", "feature": "mel", "scheme": "loso", "k": 3, "accuracy": want}
    assert ex.state["classes"] == ["F", "M"] and ex.state["n"] == 12
    assert f"{100 * want:.1f}%" in ex.summary.value and "loso" in ex.summary.value
    ex.label.value = "phone"  # back to phones: only loo exists, the scheme follows
    assert ex.scheme.value == "loo" and ex.state["scheme"] == "loo" and ex.state["feature"] == "mel"
    assert ex.update()["accuracy"] == study["tasks"]["phone"]["features"]["mel"]["accuracy"]["loo"][3]
    # the figure is a PNG widget value (drawn off-screen), redrawn when a control changes, with its protocol beside it
    before = bytes(ex.image.value)
    assert before == ex.png and before.startswith(b"\x89PNG")
    ex.feature.value = "z1"
    assert bytes(ex.image.value) == ex.png and ex.png != before
    assert "fitted to all examples" in ex.protocol.value and "score low" in ex.fallback_html()
    with pytest.raises(ValueError, match="study"):
        LatentExplorer({})


def test_protocol_figure_draws_both_protocols_per_feature(study):
    import matplotlib.pyplot as plt

    from wavelab.report.plots.latents import protocol_accuracy

    fig = protocol_accuracy(study["tasks"], ("z1", "z2", "mel"))
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(visible) == 5  # phone loo; sex and height under loo and loso (the sixth panel: the legend)
    for ax in visible:
        curves = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2]  # ks (1, 3); the chance line has 2 too
        solid = [ln for ln in curves if ln.get_linestyle() == "-" and ln.get_color() != "gray"]
        dashed = [ln for ln in curves if ln.get_linestyle() == "--"]
        assert len(solid) == len(dashed) == 3
    first = study["tasks"]["phone"]["features"]["z1"]
    ys = [list(ln.get_ydata()) for ln in visible[0].get_lines()[:2]]
    assert ys == [[100 * first[key]["loo"][k] for k in (1, 3)] for key in PROTOCOL_KEYS.values()]
    plt.close(fig)
