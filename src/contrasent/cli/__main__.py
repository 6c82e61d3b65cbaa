"""``python -m contrasent.cli ...``: the ``contrasent`` command."""

import sys

from contrasent.cli import main

sys.exit(main())
