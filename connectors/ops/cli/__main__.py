"""``python -m connectors.ops.cli``: the ``zhucan`` command."""

import sys

from connectors.ops.cli import main

sys.exit(main())
