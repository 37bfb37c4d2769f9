import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # shared helper modules next to the tests (hf_models, checkpoints)
