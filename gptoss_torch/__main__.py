"""`python -m gptoss_torch VERB ...`: see gptoss_torch/cli.py (or `python -m gptoss_torch --help`)."""

import sys

from .cli import main

sys.exit(main())
