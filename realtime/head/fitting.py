"""The statistics of the `appearance+change` input, fitted on training windows (NumPy)."""

from __future__ import annotations

import numpy as np

from realtime.head.config import ChangeBasis, ChangeReference, HeadConfig
from realtime.head.motion import quadrant_summary, window_motion
from realtime.head.where import window_shift, window_trend


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
    videos: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    regions: int = 1,
) -> list[np.ndarray]:
    """The `appearance+change` transform's weights [mean, A, C] from training windows.

    A projects onto the leading principal components of the training frames (the directions
    in which frames differ most); C onto the same (`ChangeBasis.FRAMES`), onto the
    directions in which frames change most within training windows (`ChangeBasis.CHANGES`:
    the leading eigenvectors of the changes' second moment), or onto the frames' first
    min(dims) components followed by the changes' leading directions for the rest of its
    columns (`ChangeBasis.BOTH`), or onto the frames' first min(dims) components followed by
    the directions in which the classes' windows change differently (`ChangeBasis.DISCRIMINANT`,
    `class_trend_directions`: at most classes - 1 of them, needs each window's video and
    class); `dims` = (columns of A, columns of C). A scales the centred
    projections to unit standard deviation; C scales the projected changes (against each
    window's `reference`, over the training windows) to unit standard deviation, with
    `BOTH` and `DISCRIMINANT` scaling their two groups of columns each on its own (the
    second group's directions move more, or less, within a window than the frames' do, and
    one scale would drown one of them).
    `ChangeBasis.QUADRANTS` is for features made of `regions` equal parts, the whole image's
    first (`fit_quadrants`).
    `features` (N, window, D) and `masks` (N, window) are the training windows; masks start
    with their valid frames. Columns beyond the number of features, frames or classes are zero.
    """
    if change_basis is ChangeBasis.DISCRIMINANT and (videos is None or targets is None):
        raise ValueError("change_basis discriminant needs each training window's video and class")
    if change_basis is ChangeBasis.QUADRANTS:
        return fit_quadrants(features, masks, dims, reference, regions)
    if np.shape(features)[2] > EXACT_PCA_MAX_FEATURES:
        return _fit_window_input_large(
            features, masks, dims, reference, change_basis, videos, targets
        )
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
    if change_basis is ChangeBasis.DISCRIMINANT:
        directions = class_trend_directions(features, masks, videos, targets, dims[1] - first)
        change = _frames_then(basis, first, dims[1], directions)
    elif change_basis is not ChangeBasis.FRAMES:
        kept = min(dims[1] - first, features.shape[2], len(changes))
        values, vectors = np.linalg.eigh(changes.T @ changes / max(len(changes) - 1, 1))
        change = _frames_then(basis, first, dims[1], vectors[:, np.argsort(values)[::-1][:kept]])
    appearance = appearance / max(float((centred @ appearance).std()), 1e-12)
    change = _scaled_groups(change, changes @ change, first)
    return [mean.astype(np.float32), appearance.astype(np.float32), change.astype(np.float32)]


def fit_quadrants(
    features: np.ndarray,
    masks: np.ndarray,
    dims: tuple[int, int],
    reference: ChangeReference,
    regions: int,
) -> list[np.ndarray]:
    """[mean, A, C] for features pooled over `regions` parts of the image, the whole image's
    first (`--pooling regions`: the whole image, then its four quadrants).

    The looks (A) and C's first min(dims) columns are the frames-basis transform of the
    whole image's part alone, exactly what globally pooled features give; C's other columns
    are the leading directions of how *where* things are changes within the training windows:
    each quadrant's part minus the whole image's (what a change of the whole picture, such
    as the light, leaves out), against the window's `reference`, by chunked subspace
    iteration; scaled to unit spread as a group. A column reads
    sum_q (x_q - x_whole) . v_q = x . [-sum_q v_q, v_1, ..., v_4], so C stays one matrix.
    """
    masks = np.asarray(masks, bool)
    size = np.shape(features)[2]
    if regions < 2 or size % regions:
        raise ValueError(
            f"change_basis quadrants needs region-pooled features, not {size} in {regions} parts"
        )
    part, first = size // regions, min(dims)
    mean, appearance, whole = fit_window_input(
        features[..., :part], masks, (dims[0], first), reference
    )

    def where(windows):  # each quadrant's part minus the whole image's
        return windows[..., part:] - np.tile(windows[..., :part], regions - 1)

    def where_changes():
        return _window_changes(features, masks, reference, where)

    total = int(masks.sum())
    count = min(dims[1] - first, size - part, total)
    directions = _leading_components(where_changes, size - part, count, total) if count else None
    change = np.zeros((size, dims[1]))
    change[:part, :first] = whole
    if directions is not None:
        spread = np.concatenate([chunk @ directions for chunk in where_changes()]).std()
        directions = directions / max(float(spread), 1e-12)
        change[:part, first : first + count] = -directions.reshape(regions - 1, part, count).sum(0)
        change[part:, first : first + count] = directions
    padded = [np.zeros(size), np.zeros((size, dims[0]))]
    padded[0][:part], padded[1][:part] = mean, appearance
    return [padded[0].astype(np.float32), padded[1].astype(np.float32), change.astype(np.float32)]


def _frames_columns(dims: tuple[int, int], change_basis: ChangeBasis) -> int:
    """How many of C's first columns are the frames' components (the rest: the changes')."""
    if change_basis is ChangeBasis.FRAMES:
        return dims[1]
    return 0 if change_basis is ChangeBasis.CHANGES else min(dims)


def _frames_then(basis: np.ndarray, first: int, columns: int, directions: np.ndarray) -> np.ndarray:
    """C of `columns` columns: the frames' first `first` components (`basis`), then
    `directions` (the changes' or the classes'); the columns left over are zero."""
    change = np.zeros((basis.shape[0], columns))
    change[:, :first] = basis[:, :first]
    change[:, first : first + directions.shape[1]] = directions
    return change


def _scaled_groups(change: np.ndarray, projected: np.ndarray, split: int) -> np.ndarray:
    """C with columns [:split] and [split:] each scaled so that the changes' projections on
    them (`projected`, rows x columns of C) have unit standard deviation over the group's
    non-zero columns; one group when either side is empty (`split` 0 or all of C's columns)."""
    scaled = np.array(change, np.float64)
    live = np.any(scaled != 0, axis=0)
    two = 0 < split < scaled.shape[1]
    for part in (slice(0, split), slice(split, None)) if two else (slice(None),):
        spread = projected[:, part][:, live[part]].std() if live[part].any() else 0.0
        scaled[:, part] /= max(float(spread), 1e-12)
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


def _window_changes(features, masks, reference, view=None):
    """Chunks of the training windows' changes (valid frames minus their window's
    reference), float64, about CHUNK rows each, never all at once; with `view`, of what it
    makes of each chunk of windows (a linear function of the frames, e.g. a part of them)."""
    step = max(1, CHUNK // max(np.shape(features)[1], 1))
    for start in range(0, len(features), step):
        windows = np.asarray(features[start : start + step], np.float64)
        if view is not None:
            windows = view(windows)
        valid = masks[start : start + step]
        references = window_references(windows, valid, reference)
        yield (windows - references[:, None, :])[valid]


def _fit_window_input_large(
    features, masks, dims, reference, change_basis, videos=None, targets=None
) -> list[np.ndarray]:
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
    if change_basis is ChangeBasis.DISCRIMINANT:
        directions = class_trend_directions(features, masks, videos, targets, dims[1] - first)
        change = _frames_then(basis, first, dims[1], directions)
    elif change_basis is not ChangeBasis.FRAMES:
        kept = min(dims[1] - first, size, len(frames))
        directions = _leading_components(
            lambda: _window_changes(features, masks, reference), size, kept, len(frames)
        )
        change = _frames_then(basis, first, dims[1], directions)
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


def window_trends(features: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N, window, D) windows + masks -> (N, D): each window's least-squares slope over its
    valid frames, per step (zero for a window of one frame). A window played backwards has
    the opposite trend; a still one, none."""
    masks = np.asarray(masks, bool)
    steps = np.arange(masks.shape[1], dtype=np.float64)
    counts = np.maximum(masks.sum(axis=1, keepdims=True), 1)
    centred = (steps - (masks * steps).sum(axis=1, keepdims=True) / counts) * masks  # (N, T)
    weights = centred / np.maximum((centred**2).sum(axis=1, keepdims=True), 1e-12)
    chunk = max(1, CHUNK // max(masks.shape[1], 1))
    trends = []
    for start in range(0, len(masks), chunk):
        windows = np.asarray(features[start : start + chunk], np.float64)
        # against the first frame (the weights sum to 0, so the slope is the same): a still
        # window's trend is then exactly 0, not rounding noise
        windows = windows - windows[:, :1]
        trends.append(np.einsum("nt,ntd->nd", weights[start : start + chunk], windows))
    return np.concatenate(trends)


def class_trend_directions(
    features: np.ndarray,
    masks: np.ndarray,
    videos: np.ndarray,
    targets: np.ndarray,
    count: int,
) -> np.ndarray:
    """(D, <= count) directions in which the training classes' windows change differently:
    the linear discriminants of each training video's trend (`window_trends`, averaged over
    its windows), at most classes - 1 of them, strongest first.

    Between classes: the scatter of the classes' mean trends. Within a class: how its
    videos' trends differ (camera shake, pans, exposure drift: change that is not the
    action), shrunk towards a multiple of the identity by the Ledoit-Wolf rule (there are
    far fewer videos than features), so no tuned constant. Solved in the span of the
    videos' trends (the between- and within-class scatters vanish outside it), so its cost
    grows with the number of videos, not with D squared. Each direction has unit spread
    under the shrunk within-class scatter.
    """
    trends = window_trends(features, masks)
    videos, targets = np.asarray(videos), np.asarray(targets)
    ids, index = np.unique(videos, return_inverse=True)
    per_video = np.zeros((len(ids), trends.shape[1]))
    np.add.at(per_video, index, trends)
    per_video /= np.bincount(index, minlength=len(ids))[:, None]
    labels = np.array([targets[index == i][0] for i in range(len(ids))])
    classes = np.unique(labels)
    wanted = min(count, len(classes) - 1)
    if wanted < 1:
        return np.zeros((trends.shape[1], 0))
    means = np.stack([per_video[labels == c].mean(axis=0) for c in classes])
    within = per_video - means[np.searchsorted(classes, labels)]  # (V, D)
    overall = per_video.mean(axis=0)
    between = (means - overall) * np.sqrt([(labels == c).sum() for c in classes])[:, None]
    span, _ = np.linalg.qr(np.vstack([within, between]).T)  # (D, r), r <= V + classes
    w, b = within @ span, between @ span
    samples, size = len(within), trends.shape[1]
    scatter = w.T @ w / samples  # the within-class covariance, in the span
    target = float(np.trace(scatter)) / size  # its mean variance over all D directions
    # Ledoit-Wolf: shrinkage = min(1, sum_k |w_k w_k^T - S|^2 / n^2 / |S - target I|^2), with
    # the Frobenius norms over D x D (the part outside the span is 0 - target on its diagonal)
    squared = float((np.sum(w**2, axis=1) ** 2).sum())
    spread = max(squared / samples**2 - float(np.sum(scatter**2)) / samples, 0.0)
    distance = float(np.sum((scatter - target * np.eye(len(scatter))) ** 2))
    distance += (size - len(scatter)) * target**2
    shrinkage = min(1.0, spread / max(distance, 1e-300))
    if target <= 0:  # no video differs from its class: the classes' mean trends alone
        shrinkage, target = 1.0, 1.0
    shrunk = (1 - shrinkage) * scatter + (shrinkage + 1e-9) * target * np.eye(len(scatter))
    values, vectors = _generalized_eigh(b.T @ b / samples, shrunk)
    order = np.argsort(values)[::-1][:wanted]
    order = order[values[order] > 1e-9 * max(float(values.max()), 0.0)]  # no class difference
    return span @ vectors[:, order]


def _generalized_eigh(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of a v = lambda b v (a symmetric, b symmetric positive definite), with
    v^T b v = 1, by NumPy alone: b = L L^T, then the symmetric problem of L^-1 a L^-T."""
    factor = np.linalg.cholesky(b)
    inverse = np.linalg.inv(factor)
    values, vectors = np.linalg.eigh(inverse @ a @ inverse.T)
    return values, inverse.T @ vectors


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


def window_numbers(
    maps: np.ndarray | None,
    masks: np.ndarray,
    config: HeadConfig,
    thumbs: np.ndarray | None = None,
) -> np.ndarray:
    """(N, config.window_dims) float32: each window's numbers about the whole window,
    unscaled: the trend of where the picture changes (`realtime.head.where`), x and y, then
    how far it moved on the map (`where_shift`), then on the thumbnails (`motion`,
    `realtime.head.motion`; each quadrant's too with `motion_quadrants`). `maps`: (N, T,
    rows * columns * channels) (None without `where_trend`); `thumbs`: (N, T, G * G) (None
    without `motion`)."""
    numbers = []
    # the maps of many windows are large, their thumbnails' transforms larger
    step = max(1, CHUNK // max(masks.shape[1], 1) // (8 if config.motion else 1))
    for start in range(0, len(masks), step):
        mask = masks[start : start + step]
        window = []
        if config.where_trend:
            chunk = np.asarray(maps[start : start + step])
            shaped = chunk.reshape(*chunk.shape[:2], *config.map_shape)
            window.append(window_trend(shaped, mask))
            if config.where_shift:
                window.append(window_shift(shaped, mask))
        if config.motion:
            chunk = np.asarray(thumbs[start : start + step])
            shaped = chunk.reshape(*chunk.shape[:2], config.motion, config.motion)
            window.append(window_motion(shaped, mask, config.motion_quadrants))
        numbers.append(np.concatenate(window, axis=-1))
    return np.concatenate(numbers).astype(np.float32)


def fit_where_scale(numbers: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(window_dims,) float32: one over the spread of the training windows' `window_numbers`
    (of the windows with 2 valid frames or more), so that each reaches the GRU at unit scale
    like the transform's other parts."""
    counted = np.asarray(masks).sum(axis=1) >= 2
    spread = numbers[counted].std(axis=0) if counted.sum() >= 2 else np.zeros(numbers.shape[1])
    return (1.0 / np.where(spread > 1e-12, spread, 1.0)).astype(np.float32)


#: Folds of training videos the motion's scores are calibrated on (`calibrate_motion_scores`)
CALIBRATION_FOLDS = 4
#: Temperatures tried for them: 0 (the motion says nothing) to 2, in steps of 0.025
TEMPERATURES = np.linspace(0.0, 2.0, 81)


def calibrate_motion_scores(
    moved: np.ndarray,
    targets: np.ndarray,
    groups: np.ndarray,
    n_classes: int,
    shrunk: bool = False,
) -> float:
    """How far to trust the motion's linear discriminant (`fit_motion_scores`): the
    temperature t of the `TEMPERATURES` whose softmax(t x scores) has the least log-loss on
    training windows the discriminant was not fitted on (cross-validation over `groups`, each
    window's group: its video, or the videos cut from one recording, which look and move
    alike; each class's groups in a seeded order, dealt to `CALIBRATION_FOLDS` folds, fewer
    if a class has fewer groups; the smallest t at the minimum). Where the motion differs
    between classes only by chance (the camera pans differently in every video), what
    held-out groups say is that it says nothing: t = 0; held-out windows whose siblings were
    fitted on would say otherwise. 0 too when there are too few groups to hold any out.
    `shrunk`: as `fit_motion_scores` fits them."""
    moved = np.asarray(moved, np.float64)
    targets, groups = np.asarray(targets), np.asarray(groups)
    names = np.unique(groups)
    classes = np.array([targets[groups == g][0] for g in names])
    folds = min(CALIBRATION_FOLDS, max(np.bincount(classes, minlength=n_classes)))
    if folds < 2:
        return 0.0
    fold = np.zeros(len(names), int)
    rng = np.random.default_rng(0)
    for c in range(n_classes):
        members = rng.permutation(np.flatnonzero(classes == c))
        fold[members] = np.arange(len(members)) % folds
    held_out = np.zeros((len(moved), n_classes))
    for k in range(folds):
        inside = np.isin(groups, names[fold != k])
        kernel, bias = fit_motion_scores(moved[inside], targets[inside], n_classes, shrunk)
        held_out[~inside] = moved[~inside] @ kernel + bias
    losses = []
    for t in TEMPERATURES:
        scores = t * held_out
        scores -= scores.max(axis=1, keepdims=True)
        log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
        losses.append(-log_p[np.arange(len(targets)), targets].mean())
    return float(TEMPERATURES[int(np.argmin(losses))])


def fit_motion_scores(
    moved: np.ndarray, targets: np.ndarray, n_classes: int, shrunk: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The linear discriminant of the training windows' motion (`moved`: (N, 4), scaled as
    the head reads it) for their classes: (kernel (4, C), bias (C,)) float32 such that
    `moved @ kernel + bias` is each class's log-posterior up to a constant of the window
    (Gaussian classes with one shared covariance, both estimated by maximum likelihood,
    priors the classes' shares of the windows: as scikit-learn's
    `LinearDiscriminantAnalysis`). Closed form, never trained: what the motion says about
    the class, whatever the rest of the head fits. A class without training windows gets no
    weight and the mean bias; a covariance without full rank is inverted on its range
    (pseudo-inverse). `shrunk` (`motion_quadrants`: 20 numbers from a few dozen videos):
    each class's covariance is shrunk towards a multiple of the identity, on standardised
    numbers, by the Ledoit-Wolf estimate of how far (`ledoit_wolf`), as scikit-learn's
    `LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")`."""
    moved = np.asarray(moved, np.float64)
    targets = np.asarray(targets)
    dims = moved.shape[1]
    present = [c for c in range(n_classes) if np.any(targets == c)]
    means = np.zeros((n_classes, dims))
    scatter = np.zeros((dims, dims))
    for c in present:
        rows = moved[targets == c]
        means[c] = rows.mean(axis=0)
        if shrunk:  # each class's share times its shrunk covariance
            scatter += len(rows) * ledoit_wolf(rows)
        else:
            centred = rows - means[c]
            scatter += centred.T @ centred
    covariance = scatter / max(len(moved), 1)  # the maximum-likelihood estimate, or shrunk
    precision = np.linalg.pinv(covariance, rcond=1e-10, hermitian=True)
    kernel = np.zeros((dims, n_classes))
    bias = np.zeros(n_classes)
    for c in present:
        kernel[:, c] = precision @ means[c]
        share = np.mean(targets == c)
        bias[c] = -0.5 * means[c] @ precision @ means[c] + np.log(share)
    absent = [c for c in range(n_classes) if c not in present]
    if absent and present:
        bias[absent] = bias[present].mean()
    return kernel.astype(np.float32), bias.astype(np.float32)


def fit_summarised_scores(
    moved: np.ndarray,
    scale: np.ndarray,
    masks: np.ndarray,
    targets: np.ndarray,
    groups: np.ndarray,
    n_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """`motion_summary`: the calibrated discriminant of the training windows' 20 motion
    numbers (`moved`, as the head scales them: times `scale`) fitted on their 12-number
    summary (`realtime.head.motion.quadrant_summary` of the unscaled numbers, each then
    scaled to unit spread, shrunk as `motion_quadrants` fits it) and folded back: (kernel
    (20, C), bias (C,)) float32, the temperature included, such that `moved @ kernel + bias`
    is the summary's calibrated scores. The head computes the 20 numbers as before."""
    moved = np.asarray(moved, np.float64)
    fold = quadrant_summary() / np.asarray(scale, np.float64)[:, None]  # moved -> summary
    summary = moved @ fold
    spread = fit_where_scale(summary, masks).astype(np.float64)
    summary *= spread
    fold *= spread
    kernel, bias = fit_motion_scores(summary, targets, n_classes, shrunk=True)
    trust = calibrate_motion_scores(summary, targets, groups, n_classes, shrunk=True)
    kernel = fold @ kernel.astype(np.float64)
    return (trust * kernel).astype(np.float32), (trust * bias).astype(np.float32)


def ledoit_wolf(rows: np.ndarray) -> np.ndarray:
    """(D, D) covariance of `rows` (N, D), shrunk towards a multiple of the identity: on each
    number standardised (spread 1; a constant one left as is), the maximum-likelihood
    covariance S becomes (1 - a) S + a (trace(S) / D) I with the Ledoit-Wolf estimate of a
    (2004, as scikit-learn's `ledoit_wolf_shrinkage` computes it), then scaled back."""
    rows = np.asarray(rows, np.float64)
    n, dims = rows.shape
    scale = rows.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    x = (rows - rows.mean(axis=0)) / scale
    covariance = x.T @ x / max(n, 1)
    mu = np.trace(covariance) / dims
    shrinkage = 0.0
    if dims > 1 and n > 0:
        squares = x**2
        beta = (squares.T @ squares).sum() / n - (covariance**2).sum()
        beta /= dims * n
        delta = ((covariance - mu * np.eye(dims)) ** 2).sum() / dims
        beta = min(beta, delta)
        shrinkage = beta / delta if beta > 0 else 0.0
    shrunk = (1.0 - shrinkage) * covariance + shrinkage * mu * np.eye(dims)
    return scale[:, None] * shrunk * scale[None, :]
