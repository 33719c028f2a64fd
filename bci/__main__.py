"""``python -m bci`` is the ``ssvep-exo`` command."""

import sys

from bci.cli import console_main

sys.exit(console_main())
