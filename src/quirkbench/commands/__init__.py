"""One module per ``quirkbench`` command: ``add_parser(subparsers)`` and ``run(**kw)``.

``quirkbench.cli`` discovers every module here; adding a command is adding a file.
"""
