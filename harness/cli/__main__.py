"""``python -m harness.cli``: the ``gradparity`` command."""

import sys

from harness.cli import main

sys.exit(main())
