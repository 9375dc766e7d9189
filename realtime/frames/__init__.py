"""Frames: from a video or camera to the RGB squares a backbone takes. No threads.

- `sources`: opening files, cameras and network streams (`open_source`, `VideoSource`).
- `clock`: `SamplingClock`, which frames enter the model at the model's frame rate.
- `preprocessing`: the centre crop and resize, once for training and live use.
- `video`: reading a whole video file the way the live path samples it (training, tools).
"""
