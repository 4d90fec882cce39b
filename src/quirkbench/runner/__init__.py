"""Layer 5, the runner: suites, the plan of units, executors, and the run's document."""
