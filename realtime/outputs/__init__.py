"""Where predictions go besides the UI: JSONL and event files (`text`), recordings with the
overlay drawn in (`recording`, `overlay`), and the check that no output overwrites an input,
a model directory or another output (`paths`).
"""
