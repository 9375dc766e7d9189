import os
import signal
import sys

from realtime.core.cliargs import STOP_SIGNALS

# Before the heavy imports: a stop signal from now on ends the command, exit 0 (nothing has
# been produced). An exception raised inside an import would escape with a traceback, so
# until main() installs its own handlers this one leaves at once.
for stop_signal in STOP_SIGNALS:
    signal.signal(stop_signal, lambda *_: os._exit(0))

from realtime.cli import main  # noqa: E402

code = main()
# Every thread is joined and every output flushed by now; skip TensorFlow's slow interpreter
# teardown (1-2 s) so that Ctrl-C / SIGTERM end the process within a second.
for stream in (sys.stdout, sys.stderr):
    try:
        stream.flush()
    except (OSError, ValueError):  # a closed pipe: nothing more can be delivered anyway
        pass
os._exit(code)
