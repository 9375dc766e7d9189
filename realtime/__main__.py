import os
import sys

# Before NumPy loads OpenBLAS: one BLAS thread (unless the user says otherwise). The head's
# per-frame product (features x projection) is the only BLAS call of a run; with two threads
# it spins against the backbone's threads for the cores: measured with `--pooling regions`
# (5120-d), a whole run took 1.6x as long as with one thread, and 1.09x global pooling's.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from realtime.core.cliargs import leave_at_once_on_signals  # noqa: E402

# Before the heavy imports: a stop signal from now on ends the command, exit 0 (nothing has
# been produced); main() then installs the handlers that let a run flush its outputs.
leave_at_once_on_signals()

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
