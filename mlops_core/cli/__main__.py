"""``python -m mlops_core.cli``: the same as the ``mlops`` console script."""

import sys

from mlops_core.cli import main

sys.exit(main())
