"""Generators of the pages in ``docs/generated/``, each from a real run, stamped with the
machine, the commit and the command."""
