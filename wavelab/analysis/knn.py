"""LDA embeddings and k-nearest-neighbour accuracy of labelled feature vectors (Havtorn et al. 2022, section 3.2:
a 2-D LDA subspace for plots; a 5-D LDA subspace and leave-one-out kNN accuracy versus k).

Two cross-validation schemes:

* ``"loo"``, leave one out: every example is classified by a model fitted to all the others. This is the paper's
  scheme, for phones of one speaker and (as the paper does it) for speaker sex and height, where the neighbours of a
  left-out utterance may be other utterances *of the same speaker*, so speaker identity can stand in for the label.
* ``"loso"``, leave one speaker (group) out (``LeaveOneGroupOut``): all examples of the tested group are left out
  together, so no utterance of the tested speaker is among the neighbours; it measures generalisation to new speakers.

Two protocols for fitting the projection (``lda_fit``), in either scheme:

* ``"fold"`` (the default): the standardisation and the LDA are fitted inside each fold on the training part only,
  so the tested example's label never shapes the subspace it is classified in.
* ``"all"``: the standardisation and the LDA are fitted once, to all rows and all labels, and the kNN of each fold then
  runs in that fixed subspace. This is the paper's protocol as we read section 3.2 ("We obtain a low-dimensional
  linear subspace of the latent space using a linear discriminant analysis", then "a leave-one-out k-nearest-neighbor
  (KNN) classifier on the single left-out latent representation reduced with a 5-dimensional LDA"): one LDA, then
  leave-one-out. It leaks the tested labels into the projection, and the leak grows with the dimension ``D``: LDA
  maximises between-class over within-class scatter, and with ``D`` near or above ``N - C`` the within-class scatter
  of ``N`` rows is (nearly) singular, so some direction collapses every class onto its own point for *any*
  labelling, even of pure noise. The ``"all"`` accuracy then measures how many dimensions a feature has against the
  number of examples as much as what it knows: it favours high-dimensional features (80 Mel bins over 64 latent
  dimensions) and flatters every feature most where the examples are few.

The per-fold fits are small (hundreds of rows), so BLAS runs single-threaded here (``threadpool_limits(1)``): on a
busy machine, multi-threaded SVDs of such matrices are about ten times slower.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import LeaveOneGroupOut, LeaveOneOut
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

SCHEMES = ("loo", "loso")
LDA_FITS = ("fold", "all")
"""The protocols of :func:`knn_accuracy`: the LDA fitted inside each fold (ours), or once to all rows (the paper's)."""
CHANCE_STRATEGIES = ("majority", "stratified")


def _check_xy(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be [N, D], got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must be [N] = [{X.shape[0]}] labels, got shape {y.shape}")
    if len(np.unique(y)) < 2:
        raise ValueError("y needs at least two classes for LDA / classification")
    return X, y


def _folds(n: int, groups, scheme: str):
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if scheme == "loo":
        return list(LeaveOneOut().split(np.zeros(n)))
    if groups is None:
        raise ValueError("scheme='loso' needs groups (e.g. the speaker id of each row)")
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"groups must be [N] = [{n}], got shape {groups.shape}")
    if len(np.unique(groups)) < 2:
        raise ValueError("scheme='loso' needs at least two groups")
    return list(LeaveOneGroupOut().split(np.zeros(n), groups=groups))


def make_reducer(n_components: int, standardize: bool = True) -> Pipeline:
    """``StandardScaler`` (optional) then ``LinearDiscriminantAnalysis(n_components)`` (SVD solver) as a Pipeline."""
    steps = [("scale", StandardScaler())] if standardize else []
    return Pipeline(steps + [("lda", LinearDiscriminantAnalysis(n_components=n_components))])


def make_knn_pipeline(k: int, n_components: int, standardize: bool = True) -> Pipeline:
    """The classifier whose accuracy :func:`knn_accuracy` reports: [StandardScaler] -> LDA(n_components) ->
    ``KNeighborsClassifier(k)`` (Euclidean distance in the LDA subspace, uniform votes)."""
    return Pipeline(make_reducer(n_components, standardize).steps + [("knn", KNeighborsClassifier(n_neighbors=k))])


def lda_embed(X, y, n_components: int = 2, standardize: bool = True) -> np.ndarray:
    """Project ``X`` onto its first LDA directions for plotting (the paper's figures 3, 5, 6).

    Fitted on all rows (a picture, not an accuracy estimate). With ``C`` classes LDA has at most ``C - 1`` directions,
    so two classes (sex) give one column.

    Args:
        X: ``[N, D]`` features; y: ``[N]`` labels.
        n_components: wanted dimensions.
    Returns:
        float64 ``[N, min(n_components, C - 1, D)]``.
    Raises:
        ValueError: bad shapes, fewer than two classes, ``n_components < 1``.
    """
    X, y = _check_xy(X, y)
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    nc = min(n_components, len(np.unique(y)) - 1, X.shape[1])
    with threadpool_limits(1):
        return make_reducer(nc, standardize).fit_transform(X, y)


def knn_accuracy(X, y, ks: Iterable[int], n_components: int = 5, groups=None, scheme: str = "loo",
                 standardize: bool = True, lda_fit: str = "fold") -> dict[int, float]:
    """Cross-validated accuracy of kNN in an LDA subspace, for several k (the paper's figures 3 right and 4).

    ``lda_fit="fold"`` (default): for each fold of ``scheme`` (see the module docstring) the pipeline of
    :func:`make_knn_pipeline` is fitted to the training rows: standardisation and
    ``LDA(n_components=min(n_components, C_train - 1, D))`` are fitted *inside the fold*, then the left-out rows are
    classified by a majority vote of their k nearest training rows (Euclidean, in the LDA subspace; ties go to the
    first class in sorted order, as in scikit-learn). The LDA fit is shared by all k of a fold, which gives exactly
    the accuracies of evaluating each k's Pipeline separately. A training fold with a single class predicts that
    class.

    ``lda_fit="all"`` (the paper's protocol, Havtorn et al. 2022, section 3.2, as we read it): standardisation and
    ``LDA(min(n_components, C - 1, D))`` are fitted *once, to all N rows and their labels*; then each fold of
    ``scheme`` classifies its left-out rows by the same kNN vote among the training rows, in that fixed subspace.
    The left-out labels shaped the subspace, so this leaks labels, and the more so the larger ``D`` is against
    ``N``: with ``D >= N - C`` LDA can separate *any* labelling, even of random features (see the module docstring),
    which favours high-dimensional features. Use it to compare with the paper, not as an estimate of accuracy on new
    data.

    Args:
        X: ``[N, D]`` features; y: ``[N]`` labels.
        ks: numbers of neighbours, each between 1 and the smallest training fold.
        n_components: LDA dimensions (the paper uses 5).
        groups: ``[N]`` group of each row (speaker id); required for ``"loso"``.
        scheme: ``"loo"`` or ``"loso"``.
        standardize: standardise features before the LDA.
        lda_fit: ``"fold"`` (fit inside each fold) or ``"all"`` (fit once to all rows); :data:`LDA_FITS`.
    Returns:
        ``{k: accuracy}`` (fraction of rows classified correctly, in [0, 1]).
    Raises:
        ValueError: bad shapes, fewer than two classes, unknown scheme or ``lda_fit``, loso without groups, empty ks,
            ``k < 1`` or ``k`` larger than a training fold, ``n_components < 1``.
    """
    if lda_fit not in LDA_FITS:
        raise ValueError(f"lda_fit must be one of {LDA_FITS} (fit the LDA inside each fold, or once to all rows), "
                         f"got {lda_fit!r}")
    X, y = _check_xy(X, y)
    ks = sorted({int(k) for k in ks})
    if not ks:
        raise ValueError("ks must name at least one number of neighbours")
    if ks[0] < 1:
        raise ValueError(f"every k must be >= 1, got {ks[0]}")
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    folds = _folds(len(y), groups, scheme)
    smallest = min(len(train) for train, _ in folds)
    if ks[-1] > smallest:
        raise ValueError(f"k={ks[-1]} exceeds the smallest training fold ({smallest} rows) under scheme={scheme!r}; "
                         f"use smaller ks")
    classes, y_idx = np.unique(y, return_inverse=True)
    correct = {k: 0 for k in ks}
    with threadpool_limits(1):
        if lda_fit == "all":
            # one projection of every row, fitted with every label (the leak is the point of this protocol)
            nc = min(n_components, len(classes) - 1, X.shape[1])
            Z = make_reducer(nc, standardize).fit_transform(X, y_idx)
            for train, test in folds:
                _vote(Z[train], y_idx[train], Z[test], y_idx[test], ks, len(classes), correct)
        else:
            for train, test in folds:
                _score_fold(X, y_idx, train, test, ks, len(classes), n_components, standardize, correct)
    return {k: correct[k] / len(y) for k in ks}


def _score_fold(X, y_idx, train, test, ks, n_classes, n_components, standardize, correct) -> None:
    """Add the number of correctly classified test rows of one fold, per k, to ``correct``."""
    train_classes = np.unique(y_idx[train])
    if len(train_classes) == 1:
        for k in ks:
            correct[k] += int((y_idx[test] == train_classes[0]).sum())
        return
    nc = min(n_components, len(train_classes) - 1, X.shape[1])
    reducer = make_reducer(nc, standardize)
    z_train = reducer.fit_transform(X[train], y_idx[train])
    z_test = reducer.transform(X[test])
    _vote(z_train, y_idx[train], z_test, y_idx[test], ks, n_classes, correct)


def _vote(z_train, y_train, z_test, y_test, ks, n_classes, correct) -> None:
    """Add, per k, the number of test rows whose k nearest training rows (in the given subspace) vote their label."""
    train_classes = np.unique(y_train)
    if len(train_classes) == 1:
        for k in ks:
            correct[k] += int((y_test == train_classes[0]).sum())
        return
    neighbours = KNeighborsClassifier(n_neighbors=ks[-1]).fit(z_train, y_train)
    idx = neighbours.kneighbors(z_test, return_distance=False)  # [n_test, max k], nearest first
    labels = y_train[idx]
    for k in ks:
        votes = np.stack([np.bincount(row[:k], minlength=n_classes) for row in labels])
        correct[k] += int((votes.argmax(axis=1) == y_test).sum())


def chance_accuracy(y, groups=None, scheme: str = "loo", strategy: str = "majority") -> float:
    """The accuracy floor under the same cross-validation scheme, for the book's plots.

    * ``"majority"``: predict the training fold's most frequent class (ties: first in sorted order), as
      ``sklearn.dummy.DummyClassifier("most_frequent")`` would. Beware: under leave-one-out with balanced classes
      this is *below* ``1 / C`` (leaving out an example makes its class the minority), e.g. 0 for two equal classes.
    * ``"stratified"``: the expected accuracy of guessing with the training fold's class frequencies, the mean over
      test rows of ``p_train(y_test)`` (about ``sum_c p_c^2``; ``1 / C`` for balanced classes).

    Args:
        y: ``[N]`` labels; groups: ``[N]`` (for ``"loso"``); scheme: ``"loo"`` / ``"loso"``; strategy as above.
    Returns:
        accuracy in [0, 1].
    Raises:
        ValueError: unknown scheme or strategy, loso without groups, fewer than two rows.
    """
    y = np.asarray(y)
    if y.ndim != 1 or len(y) < 2:
        raise ValueError(f"y must be [N >= 2] labels, got shape {y.shape}")
    if strategy not in CHANCE_STRATEGIES:
        raise ValueError(f"strategy must be one of {CHANCE_STRATEGIES}, got {strategy!r}")
    classes, y_idx = np.unique(y, return_inverse=True)
    total = 0.0
    for train, test in _folds(len(y), groups, scheme):
        counts = np.bincount(y_idx[train], minlength=len(classes))
        if strategy == "majority":
            total += float((y_idx[test] == counts.argmax()).sum())
        else:
            total += float((counts[y_idx[test]] / counts.sum()).sum())
    return total / len(y)


def per_class_counts(y: Sequence) -> dict[str, int]:
    """``{label: count}`` sorted by label (for captions: how many examples each class has)."""
    labels, counts = np.unique(np.asarray(y), return_counts=True)
    return {str(a): int(c) for a, c in zip(labels, counts)}
