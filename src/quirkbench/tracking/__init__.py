"""Layer 4, tracking: results documents (schema, atomic writes, loading) and comparison.

Reads and writes what tasks produced; never imports a task, the runner or the report.
"""
