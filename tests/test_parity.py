"""The streaming path computes exactly what a batch computation on the same frames does."""

import numpy as np

from realtime.frames.preprocessing import preprocess_frames
from realtime.frames.sources import open_source
from realtime.head.classifier import ActionClassifier
from realtime.stream.engine import Sink
from realtime.stream.pipeline import Pipeline, RunSettings
from tests.conftest import decode_all


class RecordingBackbone:
    """Wraps a backbone and keeps every feature vector the live loop asked for."""

    def __init__(self, inner):
        self.inner = inner
        self.features = []
        self.calls = 0

    def __getattr__(self, name):  # name, backend, feature_size...: those of the real one
        return getattr(self.inner, name)

    def extract(self, frames):
        out = self.inner.extract(frames)
        self.calls += 1
        self.features.extend(out)
        return out


class Collect(Sink):
    def __init__(self):
        self.predictions = []

    def handle(self, prediction, frame):
        self.predictions.append(prediction)


def test_streaming_features_and_predictions_equal_batch(
    make_video, tflite_model_dir, litert_backbone
):
    path = make_video(n=32, fps=25.0)
    classifier = ActionClassifier(tflite_model_dir)
    recorder = RecordingBackbone(litert_backbone)
    collect = Collect()
    pipeline = Pipeline.single(
        open_source(str(path)), recorder, classifier, RunSettings(every_frame=True), [collect]
    )
    pipeline.start()
    assert pipeline.wait(120)
    pipeline.close()
    recorder.features = recorder.features[1:]  # the warm-up call on a blank frame

    frames = preprocess_frames(decode_all(path), litert_backbone.image_size)
    batch = litert_backbone.extract(frames)
    streamed = np.stack(recorder.features)
    assert streamed.shape == batch.shape == (32, litert_backbone.feature_size)
    np.testing.assert_allclose(streamed, batch, rtol=1e-5, atol=1e-5)
    assert recorder.calls == 1 + 32  # one backbone call per frame, nothing recomputed

    # the head over each sliding window, computed as one batch
    window = classifier.info.window
    windows = np.zeros((32, window, batch.shape[1]), np.float32)
    masks = np.zeros((32, window), bool)
    for k in range(32):
        chunk = batch[max(0, k - window + 1) : k + 1]
        windows[k, : len(chunk)] = chunk
        masks[k, : len(chunk)] = True
    expected = classifier.predict_batch(windows, masks)
    got = np.array([[p.probs[label] for label in classifier.labels] for p in collect.predictions])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert [p.window for p in collect.predictions] == [min(k + 1, window) for k in range(32)]
