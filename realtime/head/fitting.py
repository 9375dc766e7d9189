"""The statistics of the `appearance+change` input, fitted on training windows (NumPy)."""

from __future__ import annotations

import numpy as np

from realtime.head.config import ChangeBasis, ChangeReference


def window_references(
    features: np.ndarray, masks: np.ndarray, reference: ChangeReference
) -> np.ndarray:
    """(N, window, D) windows + (N, window) masks -> (N, D): what each window's change is
    measured against (its first valid frame, or the mean of its valid frames)."""
    if reference is ChangeReference.FIRST:
        return features[np.arange(len(features)), np.argmax(masks, axis=1)]
    weights = masks / np.maximum(masks.sum(axis=1, keepdims=True), 1)
    return np.einsum("nt,ntd->nd", weights, features)


#: Above this many features, principal components come from subspace iteration over the
#: frames in chunks (`_leading_components`) rather than the eigendecomposition of their D x D
#: covariance: at 10240 (InceptionV3 with `--pooling regions`) that matrix alone is 800 MB
#: and its eigendecomposition takes minutes; globally pooled backbones (<= 2048) keep the
#: exact path they were fitted with.
EXACT_PCA_MAX_FEATURES = 4096
#: Frames per chunk on the large path (N x D float64 copies are never made there).
CHUNK = 4096


def fit_window_input(
    features: np.ndarray,
    masks: np.ndarray,
    dims: tuple[int, int],
    reference: ChangeReference = ChangeReference.FIRST,
    change_basis: ChangeBasis = ChangeBasis.FRAMES,
) -> list[np.ndarray]:
    """The `appearance+change` transform's weights [mean, A, C] from training windows.

    A projects onto the leading principal components of the training frames (the directions
    in which frames differ most); C onto the same (`ChangeBasis.FRAMES`), onto the
    directions in which frames change most within training windows (`ChangeBasis.CHANGES`:
    the leading eigenvectors of the changes' second moment), or onto the frames' first
    min(dims) components followed by the changes' leading directions for the rest of its
    columns (`ChangeBasis.BOTH`); `dims` = (columns of A, columns of C). A scales the centred
    projections to unit standard deviation; C scales the projected changes (against each
    window's `reference`, over the training windows) to unit standard deviation, with
    `BOTH` scaling its two groups of columns each on its own (the changes' directions move
    more within a window than the frames' do, and would drown them under one scale).
    `features` (N, window, D) and `masks` (N, window) are the training windows; masks start
    with their valid frames. Columns beyond the number of features or frames are zero.
    """
    if np.shape(features)[2] > EXACT_PCA_MAX_FEATURES:
        return _fit_window_input_large(features, masks, dims, reference, change_basis)
    features = np.asarray(features, np.float64)
    masks = np.asarray(masks, bool)
    frames = features[masks]
    wanted = max(dims)
    kept = min(wanted, features.shape[2], len(frames))
    mean = frames.mean(axis=0)
    centred = frames - mean
    covariance = centred.T @ centred / max(len(frames) - 1, 1)
    values, vectors = np.linalg.eigh(covariance)
    basis = np.zeros((features.shape[2], wanted))
    basis[:, :kept] = vectors[:, np.argsort(values)[::-1][:kept]]
    references = window_references(features, masks, reference)  # (N, D)
    changes = (features - references[:, None, :])[masks]
    appearance, change = basis[:, : dims[0]], basis[:, : dims[1]]
    first = _frames_columns(dims, change_basis)
    if change_basis is not ChangeBasis.FRAMES:
        kept = min(dims[1] - first, features.shape[2], len(changes))
        values, vectors = np.linalg.eigh(changes.T @ changes / max(len(changes) - 1, 1))
        change = np.zeros((features.shape[2], dims[1]))
        change[:, :first] = basis[:, :first]
        change[:, first : first + kept] = vectors[:, np.argsort(values)[::-1][:kept]]
    appearance = appearance / max(float((centred @ appearance).std()), 1e-12)
    change = _scaled_groups(change, changes @ change, first)
    return [mean.astype(np.float32), appearance.astype(np.float32), change.astype(np.float32)]


def _frames_columns(dims: tuple[int, int], change_basis: ChangeBasis) -> int:
    """How many of C's first columns are the frames' components (the rest: the changes')."""
    if change_basis is ChangeBasis.FRAMES:
        return dims[1]
    return min(dims) if change_basis is ChangeBasis.BOTH else 0


def _scaled_groups(change: np.ndarray, projected: np.ndarray, split: int) -> np.ndarray:
    """C with columns [:split] and [split:] each scaled so that the changes' projections on
    them (`projected`, rows x columns of C) have unit standard deviation; one group when
    either side is empty (`split` 0 or all of C's columns)."""
    scaled = np.array(change, np.float64)
    two = 0 < split < scaled.shape[1]
    for part in (slice(0, split), slice(split, None)) if two else (slice(None),):
        scaled[:, part] /= max(float(projected[:, part].std()), 1e-12)
    return scaled


def _chunks(frames: np.ndarray):
    for start in range(0, len(frames), CHUNK):
        yield np.asarray(frames[start : start + CHUNK], np.float64)


def _leading_components(rows, size: int, count: int, total: int) -> np.ndarray:
    """(size, count) leading principal directions of the rows `rows()` yields (chunks of
    centred float64 rows, `total` in all), by subspace iteration with count + 8 vectors
    (seeded, so fits repeat): each pass costs total x size x (count + 8) and memory
    size x (count + 8)."""
    width = min(count + 8, size, total)
    basis = np.linalg.qr(np.random.default_rng(0).standard_normal((size, width)))[0]
    for _ in range(12):
        image = np.zeros((size, width))
        for chunk in rows():
            image += chunk.T @ (chunk @ basis)
        basis = np.linalg.qr(image)[0]
    small = np.zeros((width, width))  # the second moment within the subspace
    for chunk in rows():
        projected = chunk @ basis
        small += projected.T @ projected
    values, vectors = np.linalg.eigh(small)
    return basis @ vectors[:, np.argsort(values)[::-1][:count]]


def _window_changes(features, masks, reference):
    """Chunks of the training windows' changes (valid frames minus their window's
    reference), float64, about CHUNK rows each, never all at once."""
    step = max(1, CHUNK // max(np.shape(features)[1], 1))
    for start in range(0, len(features), step):
        windows = np.asarray(features[start : start + step], np.float64)
        valid = masks[start : start + step]
        references = window_references(windows, valid, reference)
        yield (windows - references[:, None, :])[valid]


def _fit_window_input_large(features, masks, dims, reference, change_basis) -> list[np.ndarray]:
    """`fit_window_input` for many features: the same quantities, computed by projecting
    first (every statistic after the mean lives in the span of the components)."""
    masks = np.asarray(masks, bool)
    frames = np.asarray(features, np.float32)[masks]  # float32, as the features are
    size = frames.shape[1]
    mean = sum(chunk.sum(axis=0) for chunk in _chunks(frames)) / len(frames)
    wanted = max(dims)
    kept = min(wanted, size, len(frames))
    basis = np.zeros((size, wanted))
    basis[:, :kept] = _leading_components(
        lambda: (chunk - mean for chunk in _chunks(frames)), size, kept, len(frames)
    )
    appearance, change = basis[:, : dims[0]], basis[:, : dims[1]]
    first = _frames_columns(dims, change_basis)
    if change_basis is not ChangeBasis.FRAMES:
        kept = min(dims[1] - first, size, len(frames))
        change = np.zeros((size, dims[1]))
        change[:, :first] = basis[:, :first]
        change[:, first : first + kept] = _leading_components(
            lambda: _window_changes(features, masks, reference), size, kept, len(frames)
        )
    # every window frame projected once on both parts; a window's reference projects to the
    # reference of its projections (both are linear in the frames)
    parts = np.hstack([appearance, change])
    projected = np.stack([np.asarray(w, np.float64) @ parts for w in features])  # (N, T, a + c)
    looks = projected[masks][:, : dims[0]] - mean @ appearance
    moved = projected[..., dims[0] :]
    changes = (moved - window_references(moved, masks, reference)[:, None, :])[masks]
    appearance = appearance / max(float(looks.std()), 1e-12)
    change = _scaled_groups(change, changes, first)
    return [mean.astype(np.float32), appearance.astype(np.float32), change.astype(np.float32)]


def fit_appearance_spread(
    features: np.ndarray,
    masks: np.ndarray,
    videos: np.ndarray,
    targets: np.ndarray,
    window_input: list[np.ndarray],
) -> np.ndarray:
    """The training-only `WindowOffset`'s spread: how videos of one class differ in looks.

    Each training video's mean appearance part ((x - mean) A over its windows' valid frames)
    minus its class's mean of those; the Cholesky factor of their covariance (dims, dims),
    with a small ridge. Where a class has a single video, it contributes nothing.
    """
    mean, appearance, _ = (np.asarray(w, np.float64) for w in window_input)
    if np.shape(features)[2] > EXACT_PCA_MAX_FEATURES:  # window by window, no N x D copy
        looks = np.stack([np.asarray(w, np.float64) @ appearance for w in features])
        looks -= mean @ appearance
    else:
        looks = (np.asarray(features, np.float64) - mean) @ appearance  # (N, window, dims)
    masks = np.asarray(masks, bool)
    videos, targets = np.asarray(videos), np.asarray(targets)
    per_video, classes = [], []
    for v in np.unique(videos):
        rows = videos == v
        per_video.append(looks[rows][masks[rows]].mean(axis=0))
        classes.append(int(targets[rows][0]))
    per_video, classes = np.array(per_video), np.array(classes)
    deviations = [
        per_video[classes == c] - per_video[classes == c].mean(axis=0)
        for c in np.unique(classes)
        if (classes == c).sum() > 1
    ]
    dims = appearance.shape[1]
    if not deviations:
        return np.zeros((dims, dims), np.float32)
    stacked = np.concatenate(deviations)
    covariance = stacked.T @ stacked / max(len(stacked) - len(deviations), 1)
    ridge = 1e-6 * max(float(np.trace(covariance)) / dims, 1e-12)
    return np.linalg.cholesky(covariance + ridge * np.eye(dims)).astype(np.float32)
