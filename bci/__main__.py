"""``python -m bci`` is the ``ssvep-exo`` command."""

import sys

from bci.cli import main

sys.exit(main())
