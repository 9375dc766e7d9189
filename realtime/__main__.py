import os
import sys

from realtime.cli import main

code = main()
# Every thread is joined and every output flushed by now; skip TensorFlow's slow interpreter
# teardown (1-2 s) so that Ctrl-C / SIGTERM end the process within a second.
for stream in (sys.stdout, sys.stderr):
    try:
        stream.flush()
    except (OSError, ValueError):  # a closed pipe: nothing more can be delivered anyway
        pass
os._exit(code)
