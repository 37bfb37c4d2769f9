"""`python -m gptoss_np VERB ...`: see gptoss_np/cli.py (or `python -m gptoss_np --help`)."""

import sys

from .cli import main

sys.exit(main())
