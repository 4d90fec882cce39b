"""Layer 2, the methods: attacks, pruning, quantization, distillation, continual learning,
loss geometry.

Plain functions and small objects on models and tensors; they use the engine and never
know about tasks, results or reports.
"""
