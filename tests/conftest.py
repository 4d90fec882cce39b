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


@pytest.fixture(scope="session")
def attack_model():
    """(model, x (200, 1, 28, 28), y (200,)): mlp-100 trained on 500 mnist5k digits (~85%
    test accuracy), the fixed model every attack test runs on. Tests leave it as they found
    it (the attacks restore its mode and its parameters' ``requires_grad``)."""
    from quirkbench.engine import data
    from quirkbench.engine.models import make_model
    from quirkbench.engine.train import TrainConfig, train

    ds = data.load("mnist5k", seed=0, n_train=500, n_test=200)
    model = make_model("mlp-100", ds.input_shape, 10, seed=0)
    train(model, ds.x_train, ds.y_train, TrainConfig(lr=0.1, batch_size=64, max_epochs=10,
                                                     target_train_acc=None, eval_test=False))
    return model, ds.x_test, ds.y_test
