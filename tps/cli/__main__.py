"""``python -m tps.cli``: the ``tps`` command."""

import sys

from tps.cli import main

sys.exit(main())
