import os
import sys

from realtime.core.cliargs import StoppedBeforeRun, stop_early_on_signals

stop_early_on_signals()  # before the heavy imports: a signal from now on ends the command, exit 0

try:
    from realtime.cli import main
except StoppedBeforeRun:  # the signal landed inside the imports (a slow, loaded machine)
    os._exit(0)

code = main()
# Every thread is joined and every output flushed by now; skip TensorFlow's slow interpreter
# teardown (1-2 s) so that Ctrl-C / SIGTERM end the process within a second.
for stream in (sys.stdout, sys.stderr):
    try:
        stream.flush()
    except (OSError, ValueError):  # a closed pipe: nothing more can be delivered anyway
        pass
os._exit(code)
