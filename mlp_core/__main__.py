"""``python -m mlp_core``: see :mod:`mlp_core.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
