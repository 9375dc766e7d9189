"""realtime-action: live video action classification.

One InceptionV3 (or LiteRT) feature vector per new frame, a sliding window of the last
frames' features, and a small masked GRU over that window.
"""

__version__ = "0.1.0"
