"""realtime-action: live video action classification.

One InceptionV3 (or LiteRT) feature vector per new frame, a sliding window of the last
frames' features, and a small masked GRU over that window.

Packages, each importing only those before it (`tests/test_layers.py` holds every module to
this; `python tests/test_layers.py` prints the import graph):

- `core`: errors, the optional heavy imports, argument types, downloads;
- `frames`: sources, the sampling clock, preprocessing, reading a video file;
- `backbones`: one frame in, one feature vector out (Keras, LiteRT, OpenVINO; conversion,
  int8); `load_backbone`;
- `head`: the model directory, the GRU head (Keras for training, NumPy for inference), the
  classifier;
- `stream`: source states and reconnects, capture, inference, the pipeline, metrics;
- `outputs`: JSONL and event files, recordings, the overlay, the output-path checks;
- `ui`: the console and window views;
- `web`: `--serve`'s page, API and metrics;
- `cli` (and `app`): the command line, assembling one run;
- `cluster`: cameras over several machines with Ray (`python -m realtime.cluster`).

`training/` uses core, frames, backbones and head only.
"""

__version__ = "0.1.0"
