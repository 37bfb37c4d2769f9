"""`python -m gptoss_np.book [--check]`: the same as `python -m gptoss_np book`."""

import sys

from ..cli import main

sys.exit(main(["book"] + sys.argv[1:]))
