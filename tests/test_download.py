"""Safe data files: pinned SHA-256 before use, HTTPS-only downloads, no code run by a pickle,
no archive member outside its folder. No network: a local server on 127.0.0.1 serves the
files the tests write."""

import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading

import numpy as np
import pytest

from quirkbench.engine import data
from quirkbench.engine import download as dl
from quirkbench.errors import UserError
from quirkbench.metrics import Metric
from quirkbench.tasks import REGISTRY, Task, TaskOutput

IDX = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    return gzip.compress(header + arr.astype(np.uint8).tobytes(), mtime=0)


def mnist_files(seed=0) -> dict[str, bytes]:
    g = np.random.default_rng(seed)
    return {"train-images-idx3-ubyte.gz": idx_bytes(g.integers(0, 256, (30, 28, 28))),
            "train-labels-idx1-ubyte.gz": idx_bytes(np.arange(30) % 10),
            "t10k-images-idx3-ubyte.gz": idx_bytes(g.integers(0, 256, (20, 28, 28))),
            "t10k-labels-idx1-ubyte.gz": idx_bytes(np.arange(20) % 10)}


def write(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, b in files.items():
        (folder / name).write_bytes(b)


def pin(monkeypatch, dataset, files):
    """Make ``files`` the 'official' ones for this test."""
    table = {n: dl.Pinned(n, sha(b), len(b)) for n, b in files.items()}
    monkeypatch.setitem(dl.OFFICIAL, dataset, table)
    monkeypatch.setitem(dl.DOWNLOADS, dataset, tuple(n for n in files if n in dl.DOWNLOADS[
        dataset] or dataset != "cifar10"))
    return table


# --------------------------------------------------------------------------- a local server

class Server:
    """http.server on 127.0.0.1 in a thread; ``files`` maps path → bytes; ``fail_first``
    paths answer 500 once; every request path is logged in ``hits``."""

    def __init__(self):
        self.files, self.fail_first, self.hits, self.no_length = {}, set(), [], set()
        owner = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.hits.append(self.path)
                if self.path in owner.fail_first:
                    owner.fail_first.discard(self.path)
                    self.send_error(500)
                    return
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if self.path not in owner.no_length:  # else the body ends when it closes
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


# --------------------------------------------------------------------------- data-root files

def test_pinned_table_has_a_sha256_and_size_for_every_download():
    for name, files in dl.DOWNLOADS.items():
        for f in files:
            p = dl.OFFICIAL[name][f]
            assert len(p.sha256) == 64 and int(p.sha256, 16) >= 0 and p.size > 0
        assert all(m.startswith("https://") for m in dl.MIRRORS[name])


def test_wrong_hash_file_is_refused_in_one_line_exit_2_and_moved_aside(run_cli, tmp_path):
    files = mnist_files()
    write(tmp_path / "mnist", files)  # named like the official files, other bytes
    code, _, err = run_cli("run", "--suite", "smoke", "--tasks", "memorization", "--dataset",
                           "mnist", "--data-root", tmp_path, "--device", "cpu", "--out",
                           tmp_path / "r.json", "--no-report", "-q")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    bad = "train-images-idx3-ubyte.gz"
    assert bad in err and dl.OFFICIAL["mnist"][bad].sha256 in err and sha(files[bad]) in err
    assert not (tmp_path / "mnist" / bad).exists()  # moved aside, never read again
    assert (tmp_path / "mnist" / f"{bad}.rejected-{sha(files[bad])[:12]}").exists()


def test_own_files_need_trust_and_their_hashes_are_recorded(tmp_path):
    files = mnist_files()
    folder = tmp_path / "fashion-mnist"
    write(folder, files)
    # an unpacked file: Fashion-MNIST publishes no digest for it, so it is not official
    (folder / "train-images-idx3-ubyte.gz").unlink()
    (folder / "train-images-idx3-ubyte").write_bytes(gzip.decompress(files[IDX[0]]))
    with pytest.raises(UserError, match="not one of the official fashion-mnist files.*"
                                        "--trust-data-root"):
        data.load("fashion-mnist", data_root=tmp_path)
    assert (folder / "train-images-idx3-ubyte").exists()  # not official ≠ tampered: kept
    ds = data.load("fashion-mnist", data_root=tmp_path, trust_data_root=True)
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.sources["trusted"] is True
    assert ds.sources["sha256"]["t10k-labels-idx1-ubyte.gz"] == sha(files[IDX[3]])
    assert ds.sources["sha256"]["train-images-idx3-ubyte"] == sha(gzip.decompress(files[IDX[0]]))


def test_official_files_load_without_trust(tmp_path, monkeypatch):
    files = mnist_files()
    pin(monkeypatch, "mnist", files)
    write(tmp_path / "mnist", files)
    ds = data.load("mnist", data_root=tmp_path)
    assert ds.x_train.shape == (30, 1, 28, 28)
    assert ds.sources == {"kind": "files", "trusted": False,
                          "sha256": {k: sha(v) for k, v in sorted(files.items())}}


def test_embedded_sets_record_a_digest_of_their_arrays():
    a = data.load("digits", seed=0)
    b = data.load("digits", seed=1)
    assert a.sources["kind"] == "arrays" and a.sources == b.sources  # split-independent
    assert len(a.sources["sha256"]["arrays"]) == 64


# --------------------------------------------------------------------------- pickles

class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def cifar_batch(n=4, seed=0) -> bytes:
    g = np.random.default_rng(seed)
    return pickle.dumps({b"batch_label": b"training batch 1 of 5",
                         b"labels": list(range(n)), b"filenames": [b"a.png"] * n,
                         b"data": g.integers(0, 256, (n, 3072)).astype(np.uint8)})


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": Evil(marker), b"labels": [0]})
    with pytest.raises(UserError, match=r"refusing to unpickle (posix|os|nt)\.system"):
        dl.safe_unpickle(payload, "evil")
    assert not marker.exists()
    with pytest.raises(UserError, match="builtins.eval"):
        dl.safe_unpickle(b"cbuiltins\neval\n(S'1'\ntR.", "evil")


def test_malicious_batch_in_data_root_is_refused_even_when_trusted(tmp_path):
    sub = tmp_path / "cifar10" / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    write(sub, {n: cifar_batch() for n in names})
    marker = tmp_path / "pwned"
    (sub / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil(marker), b"labels": [0]}))
    with pytest.raises(UserError, match="data_batch_3: refusing to unpickle"):
        data.load("cifar10", data_root=tmp_path, trust_data_root=True)
    assert not marker.exists()


def test_official_batches_parse_with_the_restricted_unpickler(tmp_path):
    x, y = data.read_cifar_batch(_write(tmp_path / "b", cifar_batch(5)))
    assert x.shape == (5, 3, 32, 32) and x.dtype == np.uint8 and y.tolist() == [0, 1, 2, 3, 4]
    for proto in (2, 5):  # the official files are protocol 2; newer NumPy writes protocol 5
        d = dl.safe_unpickle(pickle.dumps({b"data": np.arange(6, dtype=np.uint8)},
                                          protocol=proto))
        assert d[b"data"].tolist() == list(range(6))
    with pytest.raises(UserError, match="dtype object"):
        dl.safe_unpickle(pickle.dumps({b"data": np.array([1, "a"], dtype=object)}))


def _write(path, b):
    path.write_bytes(b)
    return path


# --------------------------------------------------------------------------- archives

def _tar(members: list[tuple[str, bytes | None]], link: tuple[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, body in members:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            t.addfile(info)
    return buf.getvalue()


@pytest.mark.parametrize("members,link", [
    ([("cifar-10-batches-py/ok", b"1"), ("../escaped", b"x")], None),
    ([("/tmp/absolute-escape", b"x")], None),
    ([("cifar-10-batches-py/ok", b"1")], ("cifar-10-batches-py/ln", "../../escaped")),
])
def test_tar_members_outside_the_target_are_refused(tmp_path, members, link):
    arc = _write(tmp_path / "a.tar.gz", _tar(members, link))
    target = tmp_path / "out" / "inner"
    target.mkdir(parents=True)
    with pytest.raises(UserError, match="refusing member"):
        dl.extract_tar(arc, target)
    assert not (tmp_path / "out" / "escaped").exists() and not list(target.iterdir())


@pytest.mark.parametrize("has_filter", [True, False])
def test_tar_unpacks_with_or_without_the_data_filter(tmp_path, monkeypatch, has_filter):
    # requires-python allows 3.10/3.11 patch releases whose extractall has no filter=
    if not has_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
        real = tarfile.TarFile.extractall

        def old_extractall(self, path=".", members=None, *, numeric_owner=False, **kw):
            assert not kw, f"this Python's extractall takes no {sorted(kw)}"
            return real(self, path, members, numeric_owner=numeric_owner)
        monkeypatch.setattr(tarfile.TarFile, "extractall", old_extractall)
    arc = _write(tmp_path / "a.tar.gz", _tar([("cifar-10-batches-py/data_batch_1", b"abc")]))
    target = tmp_path / "out"
    target.mkdir()
    dl.extract_tar(arc, target)
    assert (target / "cifar-10-batches-py" / "data_batch_1").read_bytes() == b"abc"


# --------------------------------------------------------------------------- downloads

def test_download_streams_verifies_and_retries_once(server, tmp_path):
    body = b"payload" * 1000
    p = dl.Pinned("f.gz", sha(body), len(body))
    server.files["/a/f.gz"] = body
    server.fail_first.add("/a/f.gz")
    logs = []
    digest = dl.fetch(p, tmp_path / "f.gz", [server.url + "/a/"], log=logs.append,
                      _allow_http_loopback=True)
    assert digest == sha(body) and (tmp_path / "f.gz").read_bytes() == body
    assert server.hits == ["/a/f.gz", "/a/f.gz"] and "retrying once" in logs[0]
    assert "SHA-256 verified" in logs[-1] and not list(tmp_path.glob(".*part"))


def test_download_with_wrong_hash_is_moved_aside_and_next_mirror_used(server, tmp_path):
    good = b"good bytes"
    p = dl.Pinned("f.gz", sha(good), len(good))
    server.files["/bad/f.gz"] = b"evil bytes"  # same size, other content
    server.files["/good/f.gz"] = good
    dl.fetch(p, tmp_path / "f.gz", [server.url + "/bad/", server.url + "/good/"],
             log=lambda m: None, _allow_http_loopback=True)
    assert (tmp_path / "f.gz").read_bytes() == good
    assert len(list(tmp_path.glob("*.rejected-*"))) == 1
    with pytest.raises(UserError) as e:
        dl.fetch(p, tmp_path / "g" / "f.gz", [server.url + "/bad/"], log=lambda m: None,
                 _allow_http_loopback=True)
    msg = str(e.value)
    assert "\n" not in msg and sha(good) in msg and sha(b"evil bytes") in msg
    assert not (tmp_path / "g" / "f.gz").exists()


@pytest.mark.parametrize("announce", [True, False])
def test_download_size_limit(server, tmp_path, announce):
    body = b"x" * 5 * dl.CHUNK
    server.files["/f.gz"] = body
    if not announce:
        server.no_length.add("/f.gz")  # a server that does not say: counted while streaming
    with pytest.raises(UserError, match="more than the 100 bytes allowed"):
        dl.fetch(dl.Pinned("f.gz", sha(body), 100), tmp_path / "f.gz", [server.url + "/"],
                 log=lambda m: None, _allow_http_loopback=True)
    assert server.hits == ["/f.gz"] and not list(tmp_path.iterdir())  # too big: no retry


def test_https_only(server, tmp_path, monkeypatch):
    p = dl.Pinned("f.gz", "0" * 64, 1)
    with pytest.raises(UserError, match="HTTPS only"):
        dl.fetch(p, tmp_path / "f.gz", [server.url + "/"])  # loopback, but not allowed here
    with pytest.raises(UserError, match="HTTPS only"):
        dl.fetch(p, tmp_path / "f.gz", ["http://example.com/"], _allow_http_loopback=True)
    monkeypatch.setitem(dl.MIRRORS, "mnist", (server.url + "/",))
    with pytest.raises(UserError, match="HTTPS only"):  # the user's path never allows http
        data.load("mnist", data_root=tmp_path, download=True)
    assert server.hits == []


def test_cifar_download_end_to_end(server, tmp_path, monkeypatch):
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = {n: cifar_batch(4, i) for i, n in enumerate(names)}
    arc = _tar([(f"cifar-10-batches-py/{n}", b) for n, b in batches.items()])
    files = {"cifar-10-python.tar.gz": arc, **batches}
    pin(monkeypatch, "cifar10", files)
    server.files["/c/cifar-10-python.tar.gz"] = arc
    dl.download("cifar10", tmp_path / "cifar10", mirrors=[server.url + "/c/"],
                log=lambda m: None, _allow_http_loopback=True)
    ds = data.load("cifar10", data_root=tmp_path)  # no trust needed: the pinned bytes
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.sources["trusted"] is False
    assert ds.sources["sha256"]["test_batch"] == sha(batches["test_batch"])


# --------------------------------------------------------------------------- metadata, compare

def _probe(cfg, ctx):
    ds = ctx.load_data()
    return TaskOutput([Metric("n_train", len(ds.y_train), "", headline=True)])


@pytest.fixture
def probe_task():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Cfg:
        pass

    REGISTRY.register(Task("hashprobe", "reads its data set", Cfg, _probe, {"smoke": {}}))
    yield "hashprobe"
    REGISTRY.unregister("hashprobe")


def test_run_records_data_hashes_and_compare_warns_when_they_differ(tmp_path, probe_task):
    from quirkbench.runner.suite import run_suite
    from quirkbench.tracking import results
    from quirkbench.tracking.compare import compare, format_table

    outs = []
    for seed in (0, 1):
        root = tmp_path / f"root{seed}"
        write(root / "mnist", mnist_files(seed))
        outs.append(run_suite("smoke", tasks=[probe_task], datasets=["mnist"], device="cpu",
                              out=tmp_path / f"r{seed}.json", data_root=str(root),
                              trust_data_root=True, log=lambda m: None))
    meta = results.read(outs[0])["meta"]["data"]["mnist"]
    assert meta["trusted"] and meta["sha256"]["train-images-idx3-ubyte.gz"] == sha(
        mnist_files(0)["train-images-idx3-ubyte.gz"])
    text = format_table(compare(outs[0], outs[1]))
    warn = [ln for ln in text.splitlines() if "data set mnist" in ln]
    assert len(warn) == 1 and "train-images-idx3-ubyte.gz" in warn[0]
    assert "data set" not in format_table(compare(outs[0], outs[0]))


def test_generated_hash_table_in_the_docs_matches_the_code():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "generated" / "data-hashes.md")
    text = page.read_text()
    rows = [ln for ln in text.splitlines() if ln.startswith("| `")]
    assert len(rows) == sum(len(v) for v in dl.OFFICIAL.values())  # rerun data_hashes.py
    for name, files in dl.OFFICIAL.items():
        for f in files.values():
            assert f"| `{name}` | `{f.name}` |" in text and f"`{f.sha256}`" in text
