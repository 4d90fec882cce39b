"""Layer 1, the engine: data sets, models, the one training loop, timing and profiling.

Imports only the core (``errors``, ``config``, ``metrics``), never a higher layer.
"""
