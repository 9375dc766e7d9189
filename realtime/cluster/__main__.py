"""`python -m realtime.cluster`: see `realtime.cluster.cli`."""

import sys

from realtime.cluster.cli import main

sys.exit(main())
