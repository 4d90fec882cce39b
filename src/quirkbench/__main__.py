"""``python -m quirkbench`` works like the ``quirkbench`` command."""

import sys

from .cli import main

sys.exit(main())
