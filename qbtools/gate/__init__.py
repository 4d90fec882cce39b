"""The gate's helpers and self-checks: the PR gate's store of base sides (``base_store``),
how often the gate cries wolf (``aa``), what it catches (``planted``), and the
pytest-benchmark gate's control check and calibration."""
