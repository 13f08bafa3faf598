"""``python -m pipeline`` is the ``defintel`` command."""

import sys

from pipeline.cli import main

sys.exit(main())
