"""An example quirkbench plugin: the model ``example-cnn``, the task ``example_margin`` and
the attack ``example-fgm``."""
