"""`python -m realtime.cluster`: see `realtime.cluster.cli`."""

import os
import sys

# One BLAS thread for the worker's heads, as `python -m realtime` (see realtime/__main__.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from realtime.core.cliargs import leave_at_once_on_signals  # noqa: E402

leave_at_once_on_signals()  # as `python -m realtime`: until main() installs its own handlers

from realtime.cluster.cli import main  # noqa: E402

sys.exit(main())
