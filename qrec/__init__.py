"""qrec: fast, honest experiments with hybrid quantum-classical recommenders.

Kept light on purpose: pennylane, dimod, dwave and wandb are imported only where they are used.
"""

__version__ = "0.1.0"
