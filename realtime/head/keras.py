"""The head in Keras, for training: `build_head` is the single definition of the
architecture. TensorFlow is imported only when a head is built.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from realtime.core.errors import InputError, first_line
from realtime.core.optional import import_tensorflow
from realtime.head.config import (
    DENSE_LAYER,
    MEMBERS_LAYER,
    MOTION_SCORES_LAYER,
    PROBS_LAYER,
    SEED_HEAD,
    WINDOW_INPUT_LAYER,
    WINDOW_OFFSET_LAYER,
    HeadConfig,
    HeadInput,
    gru_layer,
    member_layer,
)
from realtime.head.fitting import (
    calibrate_motion_scores,
    fit_appearance_spread,
    fit_motion_scores,
    fit_summarised_scores,
    fit_where_scale,
    fit_window_input,
    window_numbers,
)
from realtime.head.modeldir import KERAS_FILE


def _layers(
    feature_size: int, num_classes: int, config: HeadConfig
) -> dict:  # pragma: no mutate block (TensorFlow)
    """The head's layers by name, not yet called (`build_head` lays them out)."""
    import keras

    made = []
    if config.input is HeadInput.APPEARANCE_CHANGE:
        from realtime.head.layers import WindowInput, WindowOffset

        if config.where_trend and config.map_shape is None:
            raise ValueError("a head with where_trend needs the map_shape of its features")
        made.append(
            WindowInput(
                feature_size,
                *config.dims,
                reference=config.change_reference.value,
                map_shape=config.map_shape if config.where_trend else None,
                where_shift=config.where_shift,
                motion=config.motion,
                motion_scores=config.motion_scores,
                motion_quadrants=config.motion_quadrants,
                name=WINDOW_INPUT_LAYER,
            )
        )
        if config.appearance_offset > 0:
            made.append(
                WindowOffset(
                    config.appearance_dims, config.appearance_offset, name=WINDOW_OFFSET_LAYER
                )
            )
    # the scores, plus what the motion says (fitted), through the softmax; or the softmax
    last = None if config.motion_scores else "softmax"
    for member in range(config.members):  # each its own stack, named apart (member_layer)
        names = {n: member_layer(n, member) for n in ("dropout", DENSE_LAYER, PROBS_LAYER)}
        for i, units in enumerate(config.gru_units):
            more = i < len(config.gru_units) - 1
            made.append(
                keras.layers.GRU(
                    units, return_sequences=more, name=member_layer(gru_layer(i), member)
                )
            )
        made.append(keras.layers.Dropout(config.dropout, name=names["dropout"]))
        made.append(keras.layers.Dense(config.dense_units, "relu", name=names[DENSE_LAYER]))
        made.append(keras.layers.Dense(num_classes, last, name=names[PROBS_LAYER]))
    if config.motion_scores:  # one fitted layer, added to every member's scores
        from realtime.head.layers import MotionScores

        made.append(MotionScores(num_classes, config.motion_dims, name=MOTION_SCORES_LAYER))
    if config.members > 1:
        made.append(keras.layers.Average(name=MEMBERS_LAYER))
    return {layer.name: layer for layer in made}


def _outputs(
    layers: dict, config: HeadConfig, features, mask, numbers=None, each: bool = False
):  # pragma: no mutate block (TensorFlow)
    """The head's graph on (features, mask); with `numbers`, the window's numbers computed
    beforehand (`window_numbers`) and features without the parts they are computed from.
    The head's probabilities (the mean of its members'), or with `each` the list of its
    members' (what training fits, each on its own loss)."""
    x, moved = features, None
    if WINDOW_INPUT_LAYER in layers:
        given = () if numbers is None else (numbers,)
        x = layers[WINDOW_INPUT_LAYER](x, mask, *given)
        if config.motion_scores:  # (steps, how far the picture moved)
            x, moved = x
    steps, members = x, []
    for member in range(config.members):
        x = steps
        if WINDOW_OFFSET_LAYER in layers:  # one draw per member while training
            x = layers[WINDOW_OFFSET_LAYER](x)
        for i in range(len(config.gru_units)):
            gru = layers[member_layer(gru_layer(i), member)]
            x = gru(x, mask=mask) if i == 0 else gru(x)
        x = layers[member_layer(DENSE_LAYER, member)](layers[member_layer("dropout", member)](x))
        x = layers[member_layer(PROBS_LAYER, member)](x)
        members.append(x if moved is None else layers[MOTION_SCORES_LAYER](x, moved))
    if each:
        return members
    return members[0] if len(members) == 1 else layers[MEMBERS_LAYER](members)


def build_head(
    window: int, feature_size: int, num_classes: int, config: HeadConfig = SEED_HEAD
):  # pragma: no mutate block (TensorFlow)
    """The masked GRU sequence model (uncompiled Keras model with inputs [features, mask])."""
    import_tensorflow()
    import keras

    features = keras.Input((window, feature_size), name="features")
    mask = keras.Input((window,), dtype="bool", name="mask")
    outputs = _outputs(_layers(feature_size, num_classes, config), config, features, mask)
    return keras.Model([features, mask], outputs, name="gru_head")


def reads_numbers(config: HeadConfig) -> bool:
    """Whether the head reads numbers about the whole window (`window_numbers`), which its
    training twin takes computed beforehand."""
    return config.input is HeadInput.APPEARANCE_CHANGE and bool(config.window_dims)


def training_twin(head, config: HeadConfig):  # pragma: no mutate block (TensorFlow)
    """What training fits in place of `head` (from `build_head`), or None for `head` itself.
    It shares every layer with `head`: training it trains `head`.

    With numbers about the whole window (`reads_numbers`), it has inputs [features, mask,
    numbers]: the features without the map and thumbnail that end them (`split_features`),
    and the window's numbers computed beforehand (`window_numbers`, unscaled). The head's own
    graph computes those numbers from the map and thumbnails at every step of every epoch;
    nothing trained comes before them, so training reads them computed once per window.
    With several members, it outputs each member's probabilities (a list), each fitted on
    its own loss: members trained on their mean would learn together, as one model, not
    each on its own."""
    numbers = reads_numbers(config)
    if not numbers and config.members == 1:
        return None
    import keras

    window = head.inputs[0].shape[1]
    size = head.get_layer(WINDOW_INPUT_LAYER).plain_size if numbers else head.inputs[0].shape[2]
    inputs = [keras.Input((window, size), name="features")]
    inputs.append(keras.Input((window,), dtype="bool", name="mask"))
    if numbers:
        inputs.append(keras.Input((config.window_dims,), name="numbers"))
    layers = {layer.name: layer for layer in head.layers}
    outputs = _outputs(layers, config, *inputs, each=config.members > 1)
    return keras.Model(inputs, outputs, name="gru_head_training")


def split_features(
    features: np.ndarray, config: HeadConfig
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(features the transform reads, the map (None without `where_trend`), the thumbnails
    (None without `motion`)) of feature vectors as `build_head`'s `config` reads them."""
    maps, thumbs = None, None
    if config.motion:  # the thumbnail ends each feature vector
        split = features.shape[-1] - config.thumbnail_size
        features, thumbs = features[..., :split], features[..., split:]
    if config.where_trend:  # the map part ends the rest
        split = features.shape[-1] - config.map_size
        features, maps = features[..., :split], features[..., split:]
    return features, maps, thumbs


def fit_head_input(
    model,
    config: HeadConfig,
    features: np.ndarray,
    masks: np.ndarray,
    videos: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    regions: int = 1,
    groups: np.ndarray | None = None,
) -> np.ndarray | None:  # pragma: no mutate block (TensorFlow)
    """Set what `build_head` leaves to fitting, from training windows (N, window, D) + masks:
    the `appearance+change` transform (`fit_window_input`) and, given each window's video
    and class, the training-only offset's spread (`fit_appearance_spread`) and, with
    `motion_scores`, the motion's linear discriminant (`fit_motion_scores`) times its
    calibration (`calibrate_motion_scores`, holding out each window's group: `groups`, its
    video's by default); `regions`: how
    many parts the features are pooled over (`ChangeBasis.QUADRANTS`). A `raw` head has
    nothing to fit. Returns the training windows' `window_numbers` (unscaled; what
    `training_twin` reads), or None for a head without them."""
    if config.input is not HeadInput.APPEARANCE_CHANGE:
        return None
    numbers = None
    features, maps, thumbs = split_features(features, config)
    statistics = list(
        fit_window_input(
            features,
            masks,
            config.dims,
            config.change_reference,
            config.change_basis,
            videos,
            targets,
            regions,
        )
    )
    if config.window_dims:
        numbers = window_numbers(maps, masks, config, thumbs)
        statistics.append(fit_where_scale(numbers, masks))
    model.get_layer(WINDOW_INPUT_LAYER).set_weights(statistics)
    if config.motion_scores:
        if targets is None or videos is None:
            raise ValueError(
                "a head whose scores read the motion is fitted on windows of known videos "
                "and classes"
            )
        moved = (numbers * statistics[-1])[:, -config.motion_dims :]
        scores = model.get_layer(MOTION_SCORES_LAYER)
        shrunk = config.motion_quadrants  # 20 numbers: the covariance shrunk
        held_out = videos if groups is None else groups
        if config.motion_summary:
            scale = statistics[-1][-config.motion_dims :]
            scores.set_weights(
                list(fit_summarised_scores(moved, scale, masks, targets, held_out, scores.classes))
            )
        else:
            kernel, bias = fit_motion_scores(moved, targets, scores.classes, shrunk)
            trust = calibrate_motion_scores(moved, targets, held_out, scores.classes, shrunk)
            scores.set_weights([trust * kernel, trust * bias])
    if config.appearance_offset > 0 and videos is not None and targets is not None:
        spread = fit_appearance_spread(features, masks, videos, targets, statistics[:3])
        model.get_layer(WINDOW_OFFSET_LAYER).set_weights([spread])
    return numbers


def count_parameters(model) -> dict:  # pragma: no mutate block (TensorFlow)
    """{"trainable": n, "fitted": n}: weights trained by gradient descent, and the rest
    (the input transform's fitted statistics)."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    fixed = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return {"trainable": trainable, "fitted": fixed}


def inactive_at_inference(layer) -> bool:  # pragma: no mutate block (TensorFlow)
    """Layers that only act while training (noise) and pass inputs through at inference."""
    import keras

    return layer.name == WINDOW_OFFSET_LAYER or isinstance(layer, keras.layers.GaussianNoise)


def load_keras_head(model_dir: str | os.PathLike):  # pragma: no mutate block (TensorFlow)
    """The head of a model directory as the Keras model training saved (`head.keras`), for
    use in Keras. A model directory is untrusted input: Keras's safe mode refuses a file that
    would run code when loaded (a Lambda layer, say); that is an `InputError`."""
    import_tensorflow()
    import keras

    import realtime.head.layers  # noqa: F401 - registers the head's own layers

    path = Path(model_dir) / KERAS_FILE
    if not path.is_file():
        raise InputError(f"{model_dir} has no {KERAS_FILE} (written by training since 2026-11-29)")
    try:
        return keras.saving.load_model(str(path), safe_mode=True)
    except Exception as exc:
        raise InputError(f"cannot load {path} safely ({first_line(exc, 160)})") from None
