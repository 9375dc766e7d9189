"""The bottom layer: what every other layer may use and nothing of the project's own.

- `errors`: `InputError` (a bad input: one `error:` line, exit 2) and `first_line`.
- `optional`: the optional heavy dependencies (TensorFlow/Keras, OpenVINO, NNCF), imported
  only inside the functions that need them, listed once in `OPTIONAL_MODULES`.
- `cliargs`: the one-line-error argument parser and argument types both commands share.
- `download`: resumable HTTP downloads with a progress bar.
"""
