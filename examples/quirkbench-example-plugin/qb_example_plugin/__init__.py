"""An example quirkbench plugin: the model ``example-cnn`` and the task ``example_margin``."""
