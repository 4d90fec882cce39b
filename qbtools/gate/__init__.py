"""Self-checks of the gate: how often it cries wolf (``aa``), what it catches
(``planted``), and the pytest-benchmark gate's control check and calibration."""
