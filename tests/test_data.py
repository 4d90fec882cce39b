"""Data sets: the embedded ones load, the file readers read the real formats, errors name
the fix."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from quirkbench.engine import data
from quirkbench.errors import UserError


def write_idx(path, arr: np.ndarray, gz: bool = False):
    """An IDX file exactly as LeCun's: 0x0000, type 0x08 (ubyte), ndim, big-endian dims."""
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_root(tmp_path):
    g = np.random.default_rng(0)
    root = tmp_path / "mnist"
    root.mkdir()
    for split, n in (("train", 30), ("t10k", 20)):
        write_idx(root / f"{split}-images-idx3-ubyte.gz", g.integers(0, 256, (n, 28, 28)), gz=True)
        write_idx(root / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    return tmp_path


def test_idx_reader_roundtrip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x.idx", a)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "x.idx"), a)


def test_idx_reader_refuses_truncated(tmp_path):
    write_idx(tmp_path / "x.idx", np.zeros((5, 4), np.uint8))
    raw = (tmp_path / "x.idx").read_bytes()
    (tmp_path / "x.idx").write_bytes(raw[:-3])
    with pytest.raises(UserError, match="header says"):
        data.read_idx(tmp_path / "x.idx")


def test_mnist_from_idx_files(mnist_root):
    ds = data.load("mnist", data_root=mnist_root, trust_data_root=True)
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.x_test.shape == (20, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    assert ds.y_test.tolist() == [i % 10 for i in range(20)]
    assert ds.input_shape == data.REGISTRY["mnist"].input_shape  # what the runner checks with


@pytest.mark.parametrize("name", [s.name for s in data.REGISTRY.values() if s.embedded])
def test_declared_shapes_are_the_loaded_ones(name):
    """The runner checks a user's model on the declared shape before any data is loaded."""
    ds = data.load(name, n_train=20, n_test=20)
    assert data.shape_of(name) == (ds.input_shape, ds.num_classes)


def test_cifar10_from_pickle_batches(tmp_path):
    sub = tmp_path / "cifar10" / "cifar-10-batches-py"
    sub.mkdir(parents=True)
    g = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": g.integers(0, 256, (4, 3072)).astype(np.uint8), b"labels": [0, 1, 2, 3]}
        with open(sub / name, "wb") as f:
            pickle.dump(batch, f)
    ds = data.load("cifar10", data_root=tmp_path, trust_data_root=True)
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    assert ds.input_shape == data.REGISTRY["cifar10"].input_shape
    # channel-major layout: the first 1024 bytes of a row are the red plane
    with open(sub / "test_batch", "rb") as f:
        first = pickle.load(f)[b"data"][0]
    assert torch.allclose(ds.x_test[0, 0].flatten(),
                          torch.tensor(first[:1024] / 255.0, dtype=torch.float32))


def test_missing_full_data_set_names_path_and_fix(tmp_path):
    with pytest.raises(UserError) as e:
        data.load("fashion-mnist", data_root=tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg and "--download" in msg and "\n" not in msg


def test_unknown_data_set_lists_valid():
    with pytest.raises(UserError, match="mnist5k"):
        data.load("imagenet")


def test_mnist5k_is_real_balanced_and_split_by_seed():
    a = data.load("mnist5k", seed=0)
    b = data.load("mnist5k", seed=0)
    c = data.load("mnist5k", seed=1)
    assert a.x_train.shape == (4000, 1, 28, 28) and len(a.y_test) == 1000
    assert torch.bincount(a.y_test).tolist() == [100] * 10  # stratified
    assert torch.equal(a.x_test, b.x_test) and not torch.equal(a.x_test, c.x_test)
    assert float(a.x_train.mean()) == pytest.approx(0.13, abs=0.02)  # MNIST's mean intensity


def test_subsets_are_class_balanced():
    ds = data.load("digits", n_train=200, n_test=50)
    assert len(ds.y_train) == 200 and len(ds.y_test) == 50
    assert torch.bincount(ds.y_train).min() >= 18


def test_mnist1d_is_generated_and_unbounded():
    ds = data.load("mnist1d", n_train=100)
    assert ds.input_shape == (40,) and ds.bounds is None


def test_cache_is_written_atomically_and_damaged_entries_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("QUIRKBENCH_CACHE", str(tmp_path))
    calls = []
    make = lambda: calls.append(1) or {"x": np.arange(3)}  # noqa: E731
    assert data._cached("k", make)["x"].tolist() == [0, 1, 2]
    assert data._cached("k", make)["x"].tolist() == [0, 1, 2] and len(calls) == 1
    next(tmp_path.glob("k-*.npz")).write_bytes(b"garbage")
    assert data._cached("k", make)["x"].tolist() == [0, 1, 2] and len(calls) == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_device_choice():
    assert data.resolve_device("cpu").type == "cpu"
    with pytest.raises(UserError, match="valid"):
        data.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA"):
            data.resolve_device("cuda")


def test_halves_both_ways_test_every_digit_once_and_train_on_the_other_half():
    from quirkbench.engine.data import halves_both_ways

    ds = data.load("digits", seed=3, test_fraction=0.5)
    a, b = halves_both_ways(ds, 200, 3)
    assert torch.equal(a.x_test, ds.x_test) and torch.equal(b.x_test, ds.x_train)
    assert len(a.y_train) == len(b.y_train) == 200

    def rows(x):
        return {tuple(r) for r in x.flatten(1).tolist()}

    assert rows(a.x_train) <= rows(ds.x_train) and rows(b.x_train) <= rows(ds.x_test)
    # class-balanced subsets
    assert torch.bincount(a.y_train, minlength=10).min() >= 18
