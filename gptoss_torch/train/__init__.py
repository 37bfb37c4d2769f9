"""Training the chain: a training init (init.py), batches from a token array (data.py), the loop (loop.py),
MXFP4 export and checkpoints of trained weights (export.py), and the ablation ladder over every chain step
(ladder.py). `python -m gptoss_torch train` and `python -m gptoss_torch ladder` are the commands."""
