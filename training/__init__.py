"""training: turn a folder of labelled videos into a model directory `realtime` loads.

`python -m training all` downloads UCF101 top-5, extracts features with the same
preprocessing and backbone code as `realtime`, trains the GRU head, evaluates it and writes
`weights/ucf101_top5/`. See docs/training.md.
"""
