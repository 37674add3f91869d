"""CIFAR-10 loading: the bundled subset, normalization and batches, and the full-archive download path.

The download tests serve a small archive written here in the official format (pickled batches
in cifar-10-batches-py/ inside a tar.gz) over 127.0.0.1 or file://, never the real network.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import os
import pickle
import socket
import tarfile
import threading

import numpy as np
import pytest
import torch

import optiviz as ov
from optiviz.training import data as D

PER_BATCH = 12  # images per batch in the small archive


@pytest.fixture(scope="module")
def subset():
    return ov.load_cifar10()


@pytest.fixture(scope="module")
def raw():
    return D._read_subset()


# ------------------------------------------------------------------ the bundled subset


def test_subset_splits_labels_and_classes(subset):
    assert (subset.n_train, subset.n_val, subset.n_test) == (5085 - 508, 508, 1017)
    assert subset.x_train.shape[1:] == (3, 32, 32) and subset.x_train.dtype == torch.float32
    assert subset.y_train.dtype == torch.int64
    assert subset.y_test[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]  # as in the full release
    assert subset.classes[3] == "cat" and len(subset.classes) == 10
    assert subset.device == torch.device("cpu") and subset.source == "subset"


def test_normalization_uses_training_split_statistics(subset, raw):
    x = subset.x_train.double()
    np.testing.assert_allclose(x.mean(dim=(0, 2, 3)).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(dim=(0, 2, 3)).numpy(), 1.0, atol=1e-4)
    # the test split uses the same mean/std: undo them and get the original pixels back
    mean, std = torch.tensor(subset.mean).view(1, 3, 1, 1), torch.tensor(subset.std).view(1, 3, 1, 1)
    pixels = (subset.x_test.double() * std + mean) * 255
    np.testing.assert_allclose(pixels.numpy(), raw[2].astype(np.float64), atol=1e-3)
    # close to the README's full-subset figures, not equal (the validation images are left out)
    np.testing.assert_allclose(subset.mean, (0.4936, 0.4846, 0.4483), atol=3e-3)


def test_validation_split_is_seeded_and_disjoint(raw):
    x, y = raw[0][:300], raw[1][:300]

    def build(seed, fraction=0.2):
        return D._build(x, y, raw[2][:10], raw[3][:10], val_fraction=fraction, seed=seed,
                        device=torch.device("cpu"), source="subset")

    a, b, c = build(1), build(1), build(2)
    assert torch.equal(a.x_val, b.x_val) and not torch.equal(a.x_val, c.x_val)
    assert (a.n_train, a.n_val) == (240, 60) and build(1, 0.0).n_val == 0
    # every training image lands in exactly one of train / val: compare pixel sums as fingerprints
    mean, std = torch.tensor(a.mean).view(1, 3, 1, 1), torch.tensor(a.std).view(1, 3, 1, 1)
    fp = lambda t: sorted(((t.double() * std + mean) * 255).sum(dim=(1, 2, 3)).round().tolist())  # noqa: E731
    assert fp(torch.cat([a.x_train, a.x_val])) == sorted(x.reshape(300, -1).sum(1).astype(float).tolist())


def test_batches_are_a_seeded_permutation(subset):
    small = subset.subset(100, 10, 20)
    first = [y for _, y in small.batches(32, seed=3)]
    again = [y for _, y in small.batches(32, seed=3)]
    other = [y for _, y in small.batches(32, seed=4)]
    assert len(first) == 3 and all(len(y) == 32 for y in first)  # 100 // 32 full batches, last partial dropped
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    xs = torch.cat([x for x, _ in small.batches(25, seed=0)])
    assert xs.shape[0] == 100 and len({round(v, 4) for v in xs.sum(dim=(1, 2, 3)).tolist()}) == 100


def test_subset_slices_share_normalization(subset):
    s = subset.subset(50, n_val=5, n_test=7)
    assert (s.n_train, s.n_val, s.n_test) == (50, 5, 7)
    assert s.mean == subset.mean and torch.equal(s.x_train, subset.x_train[:50])
    with pytest.raises(ValueError, match="n_train"):
        subset.subset(0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="source"):
        ov.load_cifar10("imagenet")
    with pytest.raises(ValueError, match="val_fraction"):
        ov.load_cifar10(val_fraction=1.0)
    with pytest.raises(ValueError, match="val_fraction"):
        ov.load_cifar10(val_fraction=-0.1)


# ------------------------------------------------------------------ a small archive in the official format


def _batch(x: np.ndarray, y: np.ndarray, label: str) -> bytes:
    # the official files are Python 2 pickles: bytes keys, data (N, 3072) uint8, labels a list
    return pickle.dumps({b"batch_label": label.encode(), b"labels": [int(v) for v in y],
                         b"data": x.reshape(len(x), -1), b"filenames": [b"x.png"] * len(x)}, protocol=2)


def make_archive(raw, per_batch: int = PER_BATCH) -> bytes:
    x_train, y_train, x_test, y_test = raw
    files = {}
    for i in range(5):
        sl = slice(1017 * i, 1017 * i + per_batch)  # the first images of each official batch
        files[f"data_batch_{i + 1}"] = _batch(x_train[sl], y_train[sl], f"training batch {i + 1} of 5")
    files["test_batch"] = _batch(x_test[:per_batch], y_test[:per_batch], "testing batch 1 of 1")
    files["batches.meta"] = pickle.dumps({b"label_names": [c.encode() for c in D.CLASSES],
                                          b"num_cases_per_batch": per_batch, b"num_vis": 3072}, protocol=2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


@pytest.fixture(scope="module")
def archive(raw):
    blob = make_archive(raw)
    return blob, hashlib.md5(blob).hexdigest()


class Server:
    """127.0.0.1 server handing out a queue of payloads (the last one repeats); counts requests."""

    def __init__(self, payloads: list[bytes], lengths: list[int | None] | None = None):
        self.payloads, self.lengths, self.requests = payloads, lengths, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                i = min(outer.requests, len(outer.payloads) - 1)
                outer.requests += 1
                body = outer.payloads[i]
                length = outer.lengths[i] if outer.lengths else len(body)
                self.send_response(200)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cifar-10-python.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_full_download_from_a_local_server_then_cache(tmp_path, archive, raw):
    blob, md5 = archive
    with Server([blob]) as server:
        data = ov.load_cifar10("full", root=tmp_path, url=server.url, md5=md5, val_fraction=0.0, progress=False)
        assert server.requests == 1
    assert (data.n_train, data.n_test, data.source) == (5 * PER_BATCH, PER_BATCH, "full")
    assert (tmp_path / "cifar-10-python.tar.gz").is_file() and (tmp_path / "cifar-10-batches-py" / "test_batch").is_file()
    assert not list(tmp_path.glob("*.part"))
    # pixel layout survives the round trip: undo the normalization and compare with the source images
    x_train, y_train, x_test, y_test = D.read_batches(tmp_path / "cifar-10-batches-py")
    np.testing.assert_array_equal(x_test, raw[2][:PER_BATCH])
    np.testing.assert_array_equal(x_train[PER_BATCH:2 * PER_BATCH], raw[0][1017:1017 + PER_BATCH])
    np.testing.assert_array_equal(data.y_test.numpy(), raw[3][:PER_BATCH])
    # the server is gone: the cache alone serves the next load
    again = ov.load_cifar10("full", root=tmp_path, url=server.url, md5=md5, val_fraction=0.0, progress=False)
    assert torch.equal(again.x_train, data.x_train)


def test_file_url_and_env_var_cache(tmp_path, archive, monkeypatch):
    blob, md5 = archive
    src = tmp_path / "mirror" / "cifar.tgz"
    src.parent.mkdir()
    src.write_bytes(blob)
    cache = tmp_path / "cache"
    monkeypatch.setenv("OPTIVIZ_DATA", str(cache))
    assert D.cache_dir() == cache and D.cache_dir(tmp_path / "x") == tmp_path / "x"
    data = ov.load_cifar10("full", url=src.as_uri(), md5=md5, progress=False)
    assert data.n_train + data.n_val == 5 * PER_BATCH and (cache / "cifar-10-batches-py").is_dir()


def test_corrupt_cached_archive_is_fetched_again(tmp_path, archive):
    blob, md5 = archive
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(blob[: len(blob) // 2])  # a partial download
    with Server([blob]) as server:
        data = ov.load_cifar10("full", root=tmp_path, url=server.url, md5=md5, progress=False)
        assert server.requests == 1
    assert data.n_test == PER_BATCH
    assert D.file_md5(tmp_path / "cifar-10-python.tar.gz") == md5


def test_truncated_tar_without_md5_is_fetched_again(tmp_path, archive):
    blob, _ = archive
    with Server([blob[:-200], blob]) as server:  # the first copy is cut short but claims to be whole
        data = ov.load_cifar10("full", root=tmp_path, url=server.url, md5=None, progress=False)
        assert server.requests == 2
    assert data.n_test == PER_BATCH


def test_short_transfer_is_fetched_again(tmp_path, archive):
    blob, md5 = archive
    # the first response promises more bytes than it sends
    with Server([blob[:1000], blob], lengths=[len(blob), None]) as server:
        ov.load_cifar10("full", root=tmp_path, url=server.url, md5=md5, progress=False)
        assert server.requests == 2


def test_a_bad_archive_is_fetched_once_more_then_reported(tmp_path, archive):
    _, md5 = archive
    with Server([b"not a tarball" * 100]) as server:
        with pytest.raises(D.DataDownloadError, match="md5") as err:
            ov.load_cifar10("full", root=tmp_path, url=server.url, md5=md5, progress=False)
        assert server.requests == 2
    assert "source='subset'" in str(err.value)
    assert not (tmp_path / "cifar-10-batches-py").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_message_says_how_to_proceed(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/cifar-10-python.tar.gz"
    with pytest.raises(D.DataDownloadError) as err:
        ov.load_cifar10("full", root=tmp_path, url=url, progress=False)
    msg = str(err.value)
    assert url in msg and str(tmp_path) in msg and "by hand" in msg
    assert "cifar-10-python.tar.gz" in msg and "source='subset'" in msg
    assert isinstance(err.value, OSError) and not list(tmp_path.glob("*.part"))


def test_a_folder_holding_something_else(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "readme.txt").write_text("my holiday photos")
    with pytest.raises(ValueError, match="cifar-10-batches-py.*holds something else.*data_batch_1"):
        ov.load_cifar10("full", root=tmp_path)
    for name in D.FILES:
        (folder / name).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="holds something else: data_batch_1 is not a CIFAR-10 python batch"):
        ov.load_cifar10("full", root=tmp_path)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file; expected a folder"):
        ov.load_cifar10("full", root=a_file)
    os.remove(a_file)


# ------------------------------------------------------------------ issue 12, class 9: say what was wrong, where, what to do


def test_a_bad_archive_placed_by_hand_is_set_aside_and_named_when_offline(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"my own copy, half copied" * 100)
    url = f"http://127.0.0.1:{_closed_port()}/cifar-10-python.tar.gz"
    with pytest.warns(UserWarning, match="was moved to"), pytest.raises(D.DataDownloadError) as err:
        ov.load_cifar10("full", root=tmp_path, url=url, progress=False)
    msg = str(err.value)
    assert str(archive) in msg and "has md5" in msg and ".bad" in msg  # what was wrong, where
    assert "could not download" in msg and "by hand" in msg and "source='subset'" in msg  # what to do
    assert (tmp_path / "cifar-10-python.tar.gz.bad").read_bytes().startswith(b"my own copy")  # not deleted


def test_a_bad_archive_placed_by_hand_is_replaced_and_kept_aside(tmp_path, archive):
    blob, md5 = archive
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(blob[:100])
    with Server([blob]) as server, pytest.warns(UserWarning, match="has md5 .* was moved to .*bad"):
        data = ov.load_cifar10("full", root=tmp_path, url=server.url, md5=md5, progress=False)
    assert data.n_test == PER_BATCH and (tmp_path / "cifar-10-python.tar.gz.bad").read_bytes() == blob[:100]


def test_an_archive_that_does_not_extract_says_so(tmp_path, archive):
    blob, _ = archive
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    with Server([b"still not a tarball"]) as server, pytest.warns(UserWarning, match="cannot be extracted"):
        with pytest.raises(D.DataDownloadError, match="cannot be extracted.*even after downloading it again") as err:
            ov.load_cifar10("full", root=tmp_path, url=server.url, md5=None, progress=False)
    assert "was moved to" in str(err.value) and "by hand" in str(err.value)


@pytest.mark.parametrize("payload, match", [
    (b"garbage", "not a CIFAR-10 python batch"),
    (pickle.dumps({b"data": np.zeros((4, 10), np.uint8), b"labels": [0] * 4}, protocol=2), r"data \(4, 10\)"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, protocol=2), "labels outside 0..9"),
    (pickle.dumps({b"labels": [1]}, protocol=2), "KeyError"),
    (pickle.dumps([1, 2, 3], protocol=2), "AttributeError"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}, protocol=2)[:40], "not a CIFAR-10"),
])
def test_a_garbage_extracted_folder_says_what_and_what_to_do(tmp_path, payload, match):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in D.FILES:
        (folder / name).write_bytes(payload)
    with pytest.raises(ValueError, match=match) as err:
        ov.load_cifar10("full", root=tmp_path)
    msg = str(err.value)
    assert str(folder) in msg and "delete or rename" in msg and "root=" in msg
    assert all((folder / name).exists() for name in D.FILES)  # the user's files are left alone


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in D.FILES:
        (folder / name).write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}, protocol=2))
    with pytest.raises(ValueError, match=r"asks for (posix|nt)\.system, which a CIFAR-10 batch does not hold"):
        ov.load_cifar10("full", root=tmp_path)
    assert not (tmp_path / "pwned").exists()
