"""``python -m dicomnet <tool> ...``: the same entry point as the ``dicomnet`` command."""

import sys

from dicomnet.cli.main import main

sys.exit(main())
