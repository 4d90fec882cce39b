import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture
def run_cli(capsys):
    """Run ``quirkbench ARGS`` in-process: (exit status, stdout, stderr)."""
    from quirkbench.cli import main

    def call(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return call
