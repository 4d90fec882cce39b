"""Verified data files: pinned SHA-256 digests, HTTPS downloads, safe archive and pickle reading.

Every file a full data set is read from — downloaded or found under ``--data-root`` — is
hashed before use and compared with ``OFFICIAL``, the table of the official files. A
mismatch is a one-line ``UserError`` naming the file and both digests, and the file is
moved aside (``NAME.rejected-<first 12 hex of its hash>``) so that it is never read again.
A user's own files (not the official bytes) are read only with ``trust=True``
(``--trust-data-root``); their hashes are still recorded.

Downloads go over HTTPS only, from the mirrors in ``MIRRORS`` (all carrying the same
files, so the same pinned digest checks each): streamed to a temporary file in the target
folder with a size limit and a timeout, retried once, with a progress bar, and renamed
into place only after the digest matched.

CIFAR-10's batches are Python pickles: they are read only after their digest matched, with
``safe_unpickle``, which admits only the types the official batches contain (dict, list,
bytes, str, int and NumPy arrays of plain numbers). The archive is unpacked with
``filter="data"`` after every member was checked to land inside the target folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from ..errors import UserError


@dataclass(frozen=True)
class Pinned:
    """One official file: its SHA-256, its size in bytes, torchvision's MD5 (for reference)."""

    name: str
    sha256: str
    size: int | None = None
    md5: str | None = None


def _table(*files: Pinned) -> dict[str, Pinned]:
    return {f.name: f for f in files}


# Digests: the SHA-256 values torchvision's prototype datasets pin for the archives
# (pytorch/vision torchvision/prototype/datasets/_builtin/{mnist,cifar}.py), the sizes from
# the data sets' own pages; the MD5s are torchvision's stable ``resources`` table. The
# digests of unpacked files (MNIST's IDX files, CIFAR-10's batches) agree across several
# independent public projects that verify them. Fashion-MNIST's unpacked IDX files have no
# published digest: keep the .gz files (they are read directly).
OFFICIAL: dict[str, dict[str, Pinned]] = {
    "mnist": _table(
        Pinned("train-images-idx3-ubyte.gz",
               "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422,
               "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        Pinned("train-labels-idx1-ubyte.gz",
               "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881,
               "d53e105ee54ea40749a09fcbcd1e9432"),
        Pinned("t10k-images-idx3-ubyte.gz",
               "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877,
               "9fb629c4189551a2d022fa330f9573f3"),
        Pinned("t10k-labels-idx1-ubyte.gz",
               "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542,
               "ec29112dd5afa0611ce80d1b7f02629c"),
        Pinned("train-images-idx3-ubyte",
               "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),
        Pinned("train-labels-idx1-ubyte",
               "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),
        Pinned("t10k-images-idx3-ubyte",
               "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
        Pinned("t10k-labels-idx1-ubyte",
               "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),
    ),
    "fashion-mnist": _table(
        Pinned("train-images-idx3-ubyte.gz",
               "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880,
               "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        Pinned("train-labels-idx1-ubyte.gz",
               "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515,
               "25c81989df183df01b3e8a0aad5dffbe"),
        Pinned("t10k-images-idx3-ubyte.gz",
               "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102,
               "bef4ecab320f06d8554ea6380940ec79"),
        Pinned("t10k-labels-idx1-ubyte.gz",
               "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148,
               "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    "cifar10": _table(
        Pinned("cifar-10-python.tar.gz",
               "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce", 170498071,
               "c58f30108f718f92721af3b95e74349a"),
        Pinned("data_batch_1",
               "54636561a3ce25bd3e19253c6b0d8538147b0ae398331ac4a2d86c6d987368cd", None,
               "c99cafc152244af753f735de768cd75f"),
        Pinned("data_batch_2",
               "766b2cef9fbc745cf056b3152224f7cf77163b330ea9a15f9392beb8b89bc5a8", None,
               "d4bba439e000b95fd0a9bffe97cbabec"),
        Pinned("data_batch_3",
               "0f00d98ebfb30b3ec0ad19f9756dc2630b89003e10525f5e148445e82aa6a1f9", None,
               "54ebc095f3ab1f0389bbae665268c751"),
        Pinned("data_batch_4",
               "3f7bb240661948b8f4d53e36ec720d8306f5668bd0071dcb4e6c947f78e9682b", None,
               "634d18415352ddfa80567beed471001a"),
        Pinned("data_batch_5",
               "d91802434d8376bbaeeadf58a737e3a1b12ac839077e931237e0dcd43adcb154", None,
               "482c414d41f54cd18b22e5b47cb7c3cb"),
        Pinned("test_batch",
               "f53d8d457504f7cff4ea9e021afcf0e0ad8e24a91f3fc42091b8adef61157831", None,
               "40351d587109b95175f43aff81a1287e"),
    ),
}

# HTTPS mirrors, tried in order; every one is checked against the same pinned digest.
# Fashion-MNIST's own host (fashion-mnist.s3-website...) serves plain HTTP only, so its
# files come from the project's GitHub repository and the Keras bucket instead.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion-mnist": (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",
                "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
}
DOWNLOADS: dict[str, tuple[str, ...]] = {  # what --download fetches for each data set
    "mnist": tuple(n for n in OFFICIAL["mnist"] if n.endswith(".gz")),
    "fashion-mnist": tuple(OFFICIAL["fashion-mnist"]),
    "cifar10": ("cifar-10-python.tar.gz",),
}
MAX_BYTES = 512 * 2**20  # the cap for a file whose size is not pinned
TIMEOUT_S = 60.0
CHUNK = 2**20


# --------------------------------------------------------------------------- hashing

_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) → sha256, this process


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks (memoised per path, size and mtime)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def move_aside(path: Path, digest: str) -> Path:
    """Rename a rejected file so that no later run reads it; returns the new path."""
    dest = path.with_name(f"{path.name}.rejected-{digest[:12]}")
    os.replace(path, dest)
    return dest


def verify(dataset: str, path: str | Path, *, trust: bool = False) -> str:
    """Hash ``path`` and check it against the official table; return its SHA-256.

    An official file name with another digest is moved aside and refused (unless
    ``trust``); a file the table does not know is refused unless ``trust``.
    """
    path = Path(path)
    digest = sha256_file(path)
    table = OFFICIAL.get(dataset, {})
    pinned = table.get(path.name) or table.get(path.name.replace(".idx", "-idx"))
    if trust or (pinned is not None and digest == pinned.sha256):
        return digest
    if pinned is None:
        known = ", ".join(OFFICIAL.get(dataset, {})) or "none"
        raise UserError(f"{path} is not one of the official {dataset} files (pinned: {known}); "
                        "pass --trust-data-root to use your own files")
    aside = move_aside(path, digest)
    raise UserError(f"{path}: SHA-256 mismatch (expected {pinned.sha256}, got {digest}); "
                    f"moved aside to {aside.name}, not used (your own files: rename it back and "
                    "pass --trust-data-root)")


# --------------------------------------------------------------------------- downloads

def _check_url(url: str, allow_http_loopback: bool) -> None:
    u = urlparse(url)
    if u.scheme == "https":
        return
    if allow_http_loopback and u.scheme == "http" and u.hostname in ("127.0.0.1", "localhost"):
        return
    raise UserError(f"refusing to download {url}: HTTPS only")


def _progress(total: int | None, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, disable=None, leave=False)


def _stream(url: str, tmp: Path, limit: int, timeout: float, desc: str) -> int:
    """Copy ``url`` into ``tmp``, at most ``limit`` bytes; returns the byte count."""
    import urllib.request

    req = urllib.request.Request(url, headers={"User-Agent": "quirkbench"})
    n = 0
    with urllib.request.urlopen(req, timeout=timeout) as r, open(tmp, "wb") as f:
        length = r.headers.get("Content-Length")
        if length is not None and int(length) > limit:
            raise _TooBig(f"{url} announces {int(length)} bytes, more than the {limit} bytes "
                          "allowed")
        bar = _progress(int(length) if length else None, desc)
        try:
            for chunk in iter(lambda: r.read(CHUNK), b""):
                n += len(chunk)
                if n > limit:
                    raise _TooBig(f"{url} sent more than the {limit} bytes allowed")
                f.write(chunk)
                bar.update(len(chunk))
        finally:
            bar.close()
        if length is not None and n != int(length):
            raise OSError(f"connection closed after {n} of {length} bytes")
    return n


class _TooBig(Exception):
    pass


def fetch(pinned: Pinned, dest: Path, mirrors: Iterable[str], *, timeout: float = TIMEOUT_S,
          log: Callable[[str], None] | None = None, _allow_http_loopback: bool = False) -> str:
    """Download ``pinned`` into ``dest`` from the first mirror that serves its exact bytes.

    Each mirror is tried twice (one retry on a network error); a file with another digest
    is moved aside and the next mirror tried. ``_allow_http_loopback`` lets tests serve
    files from a local ``http://127.0.0.1`` server; nothing else may pass it.
    """
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    mirrors = list(mirrors)
    for m in mirrors:
        _check_url(m, _allow_http_loopback)
    dest.parent.mkdir(parents=True, exist_ok=True)
    limit = pinned.size if pinned.size is not None else MAX_BYTES
    failures = []
    for base in mirrors:
        url = base + pinned.name
        for attempt in (1, 2):
            fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{pinned.name}.", suffix=".part")
            os.close(fd)
            tmp = Path(name)
            t0 = time.perf_counter()
            try:
                n = _stream(url, tmp, limit, timeout, pinned.name)
            except _TooBig as e:
                tmp.unlink(missing_ok=True)
                failures.append(str(e))
                break
            except (OSError, ValueError) as e:  # URLError, timeouts, resets are OSErrors
                tmp.unlink(missing_ok=True)
                failures.append(f"{url}: {e}")
                if attempt == 1:
                    log(f"download of {url} failed ({e}); retrying once")
                continue
            digest = sha256_file(tmp)
            if digest != pinned.sha256:
                aside = move_aside(tmp, digest)
                failures.append(f"{url}: SHA-256 mismatch (expected {pinned.sha256}, got "
                                f"{digest}); moved aside to {aside.name}")
                break
            os.replace(tmp, dest)
            secs = time.perf_counter() - t0
            log(f"downloaded {pinned.name} ({n / 2**20:.1f} MiB in {secs:.1f} s) from "
                f"{urlparse(url).hostname}; SHA-256 verified")
            return digest
    raise UserError(f"could not download {pinned.name}: " + "; ".join(failures))


def download(dataset: str, folder: Path, *, log: Callable[[str], None] | None = None,
             mirrors: Iterable[str] | None = None, _allow_http_loopback: bool = False) -> None:
    """Fetch the files ``--download`` needs for ``dataset`` into ``folder`` (verified), and
    unpack CIFAR-10's archive."""
    mirrors = tuple(mirrors) if mirrors is not None else MIRRORS[dataset]
    for name in DOWNLOADS[dataset]:
        dest = folder / name
        pinned = OFFICIAL[dataset][name]
        if dest.exists() and sha256_file(dest) == pinned.sha256:
            continue
        fetch(pinned, dest, mirrors, log=log, _allow_http_loopback=_allow_http_loopback)
    if dataset == "cifar10":
        extract_tar(folder / "cifar-10-python.tar.gz", folder)


# --------------------------------------------------------------------------- archives

def extract_tar(archive: Path, target: Path) -> None:
    """Unpack a tar archive into ``target``: only regular files and folders, every member
    inside ``target`` (absolute names, ``..`` and links are refused), ``filter="data"`` where
    this Python has it (3.10.12+, 3.11.4+, 3.12+; before, the checks above are the guard)."""
    target = Path(target).resolve()
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            p = PurePosixPath(m.name)
            inside = (target / m.name).resolve()
            if (p.is_absolute() or ".." in p.parts or not inside.is_relative_to(target)
                    or not (m.isfile() or m.isdir())):
                raise UserError(f"{archive}: refusing member {m.name!r} (it would land outside "
                                f"{target}, or is not a plain file or folder); archive not used")
        if hasattr(tarfile, "data_filter"):
            t.extractall(target, filter="data")
        else:  # an older 3.10/3.11 patch release: the members checked above, as they are
            t.extractall(target)


# --------------------------------------------------------------------------- pickles

SAFE_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 spell bytes
})


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, f, source: str, **kw):
        super().__init__(f, **kw)
        self.source = source

    def find_class(self, module, name):
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        raise UserError(f"{self.source}: refusing to unpickle {module}.{name} (a CIFAR-10 batch "
                        "holds only dicts, lists, bytes, numbers and NumPy arrays)")


def safe_unpickle(data: bytes, source: str = "pickle"):
    """Unpickle ``data`` admitting only built-in containers and NumPy number arrays."""
    import numpy as np

    try:
        obj = _SafeUnpickler(io.BytesIO(data), source, encoding="bytes").load()
    except UserError:
        raise
    except Exception as e:  # a truncated or malformed pickle
        raise UserError(f"{source}: not a readable CIFAR-10 batch ({type(e).__name__}: "
                        f"{e})") from None

    def check(o, depth=0):
        if depth > 4:
            raise UserError(f"{source}: unexpectedly deep structure in a CIFAR-10 batch")
        if isinstance(o, np.ndarray):
            if o.dtype.kind not in "biuf":
                raise UserError(f"{source}: refusing an array of dtype {o.dtype}")
        elif isinstance(o, dict):
            for k, v in o.items():
                check(k, depth + 1)
                check(v, depth + 1)
        elif isinstance(o, (list, tuple)):
            for v in o:
                if not isinstance(v, (int, float, bytes, str)):
                    check(v, depth + 1)
        elif not isinstance(o, (int, float, bytes, str, type(None))):
            raise UserError(f"{source}: refusing an object of type {type(o).__name__}")

    check(obj)
    return obj
