"""`ActionClassifier`: a model directory, ready to classify windows or a stream of frames."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from realtime.core.errors import InputError, first_line
from realtime.core.optional import import_tensorflow
from realtime.head.keras import build_head
from realtime.head.modeldir import WEIGHTS_FILE, ModelInfo, read_model_info
from realtime.head.numpyhead import HeadStream, NumpyHead, UnsupportedHead
from realtime.head.window import FeatureWindow, WindowStream


class ActionClassifier:
    """The trained head, ready to classify one window at a time."""

    def __init__(self, model_dir: str | os.PathLike, info: ModelInfo | None = None):
        """Reads the weights without TensorFlow (`NumpyHead.from_weights_file`); the Keras
        model is built only when asked for (`model`), or for a head NumPy cannot run."""
        self.model_dir = Path(model_dir)
        self.info = info or read_model_info(self.model_dir)
        self._model = None
        try:
            self.numpy_head: NumpyHead | None = NumpyHead.from_weights_file(
                self.model_dir / WEIGHTS_FILE, self.info
            )
        except UnsupportedHead:
            self.numpy_head = None  # pragma: no mutate (TensorFlow path)
            self.model  # noqa: B018 - load it now: a broken file fails here, not mid-run
        self._probabilities = None  # pragma: no mutate (Keras only)

    @property
    def model(self):  # pragma: no mutate block (TensorFlow)
        """The Keras head with the directory's weights (built on first use: TensorFlow)."""
        if self._model is None:
            model = build_head(
                self.info.window,
                self.info.feature_size,
                len(self.info.labels),
                self.info.head,
            )
            try:
                model.load_weights(str(self.model_dir / WEIGHTS_FILE))
            except Exception as exc:
                raise InputError(
                    f"cannot load {self.model_dir / WEIGHTS_FILE} ({first_line(exc, 140)})"
                ) from None
            self._model = model
        return self._model

    def keras_probabilities(
        self, features: np.ndarray, mask: np.ndarray
    ) -> np.ndarray:  # pragma: no mutate block (TensorFlow)
        """(N, window, D) + (N, window) -> (N, n_classes) through the Keras model itself."""
        if self._probabilities is None:
            tf = import_tensorflow()
            model = self.model
            window, size = self.info.window, self.info.feature_size

            @tf.function(
                input_signature=[
                    tf.TensorSpec([None, window, size], tf.float32),
                    tf.TensorSpec([None, window], tf.bool),
                ]
            )
            def probabilities(features, mask):
                return model([features, mask], training=False)

            self._probabilities = probabilities
        probs = self._probabilities(np.asarray(features, np.float32), np.asarray(mask, bool))
        return probs.numpy().astype(np.float32, copy=False)

    def stream(self) -> HeadStream | KerasHeadStream:
        """Per-frame inference over the model's sliding window (see `HeadStream`)."""
        if self.numpy_head is not None:
            return HeadStream(self.numpy_head, self.info.window)
        return KerasHeadStream(self)  # pragma: no mutate (TensorFlow path)

    @property
    def labels(self) -> list[str]:
        return self.info.labels

    def predict(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(window, D) features + (window,) mask -> (n_classes,) probabilities."""
        return self.predict_batch(features[None], mask[None])[0]

    def predict_batch(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(N, window, D) + (N, window) -> (N, n_classes)."""
        if self.numpy_head is None:
            return self.keras_probabilities(features, mask)  # pragma: no mutate (TensorFlow path)
        return np.stack(
            [self.numpy_head.predict(f, m) for f, m in zip(features, mask, strict=True)]
        )

    def predict_windows(self, frames: np.ndarray, starts) -> np.ndarray:
        """(T, D) features of one video's sampled frames -> (len(starts), n_classes): the
        windows starting at `starts`, each the next `window` frames (fewer at the end). As
        `python -m realtime --every-frame` computes them: each frame projected, and linked to
        the one before, once, not once per window that holds it."""
        if self.numpy_head is not None:
            return self.numpy_head.predict_windows(frames, starts, self.info.window)
        window = self.info.window  # pragma: no mutate block (TensorFlow path)
        features = np.zeros((len(starts), window, self.info.feature_size), np.float32)
        mask = np.zeros((len(starts), window), bool)
        for i, start in enumerate(starts):
            chunk = frames[start : start + window]
            features[i, : len(chunk)], mask[i, : len(chunk)] = chunk, True
        return self.keras_probabilities(features, mask)


class KerasHeadStream(WindowStream):  # pragma: no mutate block (TensorFlow)
    """`HeadStream`'s interface through the Keras model (heads NumpyHead cannot run)."""

    def __init__(self, classifier: ActionClassifier):
        super().__init__(FeatureWindow(classifier.info.window, classifier.info.feature_size))
        self.classifier = classifier

    def push(self, feature: np.ndarray) -> np.ndarray:
        self._window.push(feature)
        features, mask = self._window.arrays()
        return self.classifier.keras_probabilities(features[None], mask[None])[0]
