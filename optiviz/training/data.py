"""CIFAR-10 held as normalized tensors on the training device.

At this size (a few thousand to 60,000 images) the whole set fits in memory, so minibatches are
index gathers on the device: no DataLoader, no worker processes, no per-batch Python copies.
The bundled subset makes a lecture work with no network; the full set comes from the official
python-version archive through a small, checked download (see `download_cifar10`).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any
from pathlib import Path

import numpy as np
import torch

from optiviz._validate import check_choice, check_int, check_range
from optiviz.engine.devices import pick_device

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SOURCES = ("subset", "full")

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
FILES = (*TRAIN_BATCHES, "test_batch", "batches.meta")
ENV_VAR = "OPTIVIZ_DATA"


class DataDownloadError(OSError):
    """The full CIFAR-10 archive could not be fetched or verified; the message says what to do."""


@dataclass(frozen=True)
class CIFAR10:
    """Train / validation / test splits as normalized float32 (N, 3, 32, 32) tensors and int64 labels.

    `mean` and `std` are per channel, from the training split only (what the lectures prescribe,
    and what keeps the validation split honest). Class names are in label order.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    classes: tuple[str, ...] = CLASSES
    source: str = "subset"

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.x_val.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        name = check_choice("split", name, ("train", "val", "test"))
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def subset(self, n_train: int, n_val: int | None = None, n_test: int | None = None) -> CIFAR10:
        """The first n images of each split (views, no copy): tiny runs for tests and quick demos.

        The splits are already in random order, so a prefix is a fair sample. Normalization stays
        the parent's, so numbers compare across slices.
        """
        n_train = check_int("n_train", n_train, 1, self.n_train)
        n_val = self.n_val if n_val is None else check_int("n_val", n_val, 0, self.n_val)
        n_test = self.n_test if n_test is None else check_int("n_test", n_test, 0, self.n_test)
        return replace(
            self,
            x_train=self.x_train[:n_train], y_train=self.y_train[:n_train],
            x_val=self.x_val[:n_val], y_val=self.y_val[:n_val],
            x_test=self.x_test[:n_test], y_test=self.y_test[:n_test],
        )

    def fingerprint(self) -> str:
        """A short checksum of the labels of every split and the first images of each: a shared
        setting keeps it, so a rebuilt run that would see other images says so instead."""
        crc = zlib.crc32(repr((self.source, self.mean, self.std)).encode())
        for x, y in ((self.x_train, self.y_train), (self.x_val, self.y_val), (self.x_test, self.y_test)):
            crc = zlib.crc32(y.detach().cpu().numpy().tobytes(), crc)
            crc = zlib.crc32(x[:4].detach().cpu().numpy().tobytes(), crc)
        return f"{crc:08x}"

    def to(self, device: str | torch.device) -> CIFAR10:
        dev = pick_device(device)
        if dev == self.device:
            return self
        moved = {k: getattr(self, k).to(dev) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return replace(self, **moved)

    def batches(
        self, batch_size: int, *, seed: int | None = 0, generator: torch.Generator | None = None, split: str = "train"
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled epoch of full minibatches (the last partial batch is dropped, as batch norm needs >1 sample).

        The permutation is drawn on the device from `generator` (or a fresh one seeded with `seed`),
        so the same seed gives the same batches on the same device.
        """
        x, y = self.split(split)
        batch_size = check_int("batch_size", batch_size, 1)
        gen = generator if generator is not None else make_generator(self.device, seed or 0)
        perm = torch.randperm(x.shape[0], generator=gen, device=self.device)
        bs = min(batch_size, x.shape[0])
        for start in range(0, x.shape[0] - bs + 1, bs):
            idx = perm[start:start + bs]
            yield x[idx], y[idx]


class EpochOrder:
    """The minibatch order of both trainers (Trainer, ManyTrainer): one randperm of the n training
    images per epoch from `generator`, full batches in its order (a partial last batch is dropped),
    so a run and its batched twin see the same batches. `indices()` is the next batch; `advance()`
    moves past it and says whether that ended the epoch. `state()` / `load_state()` snapshot it
    (the generator's state is the owner's to snapshot)."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> None:
        self.n = check_int("n", n, 1)
        self.batch_size = min(check_int("batch_size", batch_size, 1), self.n)
        self.steps_per_epoch = max(1, self.n // self.batch_size)
        self.generator = generator
        self.device = device
        self.pos = 0
        self.perm: torch.Tensor | None = None

    def indices(self) -> torch.Tensor:
        if self.perm is None:
            self.perm = torch.randperm(self.n, generator=self.generator, device=self.device)
        return self.perm[self.pos * self.batch_size:(self.pos + 1) * self.batch_size]

    def advance(self) -> bool:
        self.pos += 1
        if self.pos < self.steps_per_epoch:
            return False
        self.pos, self.perm = 0, None
        return True

    def state(self) -> dict[str, Any]:
        return {"pos": self.pos, "perm": None if self.perm is None else self.perm.clone()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.pos = int(state["pos"])
        self.perm = None if state["perm"] is None else state["perm"].clone()


def make_generator(device: torch.device, seed: int) -> torch.Generator:
    """A generator living on `device`, so randperm/bernoulli run there without host round trips."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def load_cifar10(
    source: str = "subset",
    *,
    val_fraction: float = 0.1,
    device: str | torch.device | None = None,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    url: str = URL,
    md5: str | None = MD5,
    progress: bool = True,
) -> CIFAR10:
    """Load CIFAR-10 onto the training device: the bundled subset (offline) or the full official release.

    `val_fraction` of the training images (a seeded random draw) become the validation split.
    `source="full"` downloads the official archive once into the cache folder (`root`, else
    $OPTIVIZ_DATA, else ~/.cache/optiviz); `url` and `md5` are there for mirrors and tests.
    """
    source = check_choice("source", source, SOURCES)
    check_range("val_fraction", val_fraction, 0.0, 1.0, high_inclusive=False)
    seed = check_int("seed", seed)
    dev = pick_device(device)
    if source == "subset":
        x_train, y_train, x_test, y_test = _read_subset()
    else:
        folder = prepare_full(root, url=url, md5=md5, progress=progress)
        x_train, y_train, x_test, y_test = read_batches(folder)
    return _build(x_train, y_train, x_test, y_test, val_fraction=val_fraction, seed=seed, device=dev, source=source)


def _build(x_train, y_train, x_test, y_test, *, val_fraction, seed, device, source) -> CIFAR10:
    n = x_train.shape[0]
    n_val = int(round(val_fraction * n))
    if n - n_val < 1:
        raise ValueError(f"val_fraction must leave at least one training image, got {val_fraction:g} of {n}")
    perm = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    xtr = torch.from_numpy(x_train[train_idx]).to(device)
    # statistics in float64 from the training split only
    scaled = xtr.to(torch.float64) / 255.0
    mean = scaled.mean(dim=(0, 2, 3))
    std = scaled.std(dim=(0, 2, 3))
    del scaled

    def norm(x_u8: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(x_u8)).to(device).to(torch.float32).div_(255.0)
        return x.sub_(mean.to(torch.float32).view(1, 3, 1, 1)).div_(std.to(torch.float32).view(1, 3, 1, 1))

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)

    return CIFAR10(
        x_train=norm(x_train[train_idx]), y_train=labels(y_train[train_idx]),
        x_val=norm(x_train[val_idx]), y_val=labels(y_train[val_idx]),
        x_test=norm(x_test), y_test=labels(y_test),
        mean=tuple(float(v) for v in mean.cpu()), std=tuple(float(v) for v in std.cpu()),
        source=source,
    )


def _read_subset() -> tuple[np.ndarray, ...]:
    with resources.files("optiviz").joinpath("data/cifar10_subset.npz").open("rb") as f:
        with np.load(f) as z:
            return z["x_train"], z["y_train"], z["x_test"], z["y_test"]


# ---------------------------------------------------------------- full data set: cache and download


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """Where the archive lives: `root`, else $OPTIVIZ_DATA, else ~/.cache/optiviz."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "optiviz"


def prepare_full(
    root: str | os.PathLike | None = None, *, url: str = URL, md5: str | None = MD5, progress: bool = True
) -> Path:
    """Return a folder holding the official python batches, downloading and extracting at most once.

    A cached archive with the wrong checksum or a truncated tar counts as a partial download and is
    fetched again once; a second bad copy raises DataDownloadError rather than looping.
    """
    base = cache_dir(root)
    if base.exists() and not base.is_dir():
        raise ValueError(f"root {str(base)!r} is a file; expected a folder for {ARCHIVE} and {FOLDER}/")
    folder = base / FOLDER
    if folder.exists():
        _check_folder(folder)
        return folder
    archive = base / ARCHIVE
    if archive.exists() and not archive.is_file():
        raise ValueError(f"{str(archive)!r} is not a file; expected the {ARCHIVE} archive (md5 {MD5})")
    base.mkdir(parents=True, exist_ok=True)
    problem = None
    notes: list[str] = []  # what was wrong with a copy that was set aside, for the final message
    for _attempt in range(2):  # a partial or corrupt copy is fetched again, once
        if not archive.exists():
            try:
                problem = download(url, archive, base=base, md5=md5, progress=progress)
            except DataDownloadError as exc:
                if not notes:
                    raise
                raise DataDownloadError(f"{' '.join(notes)} {exc}") from exc.__cause__
            if problem is not None:
                continue
        problem = _archive_problem(archive, md5) or _try_extract(archive, folder)
        if problem is None:
            return folder
        notes.append(_set_aside(archive, problem))
    raise DataDownloadError(
        f"the CIFAR-10 archive at {str(archive)!r} {problem}, even after downloading it again from {url} "
        f"({' '.join(notes)}). Retry later, or place a good copy of {ARCHIVE} there by hand. "
        "The bundled subset needs no network: ov.load_cifar10(source='subset')."
    )


def _set_aside(archive: Path, problem: str) -> str:
    """Move a bad archive to ARCHIVE.bad (never deleted unsaid: it may be a copy placed by hand),
    warn, and return the sentence the final message repeats."""
    bad = archive.with_name(archive.name + ".bad")
    os.replace(archive, bad)
    note = (f"The archive at {str(archive)!r} {problem}: it was moved to {str(bad)!r} (delete it once a good copy "
            f"is in place) and a fresh copy is being downloaded.")
    warnings.warn(note, stacklevel=3)
    return note


def _archive_problem(archive: Path, md5: str | None) -> str | None:
    if md5 is not None:
        got = file_md5(archive)
        if got != md5.lower():
            return f"has md5 {got}, expected {md5.lower()} (a partial or corrupt download)"
    return None


def file_md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(
    url: str, dest: Path, *, base: Path, md5: str | None = MD5, progress: bool = True, timeout: float = 30.0
) -> str | None:
    """Stream `url` to `dest` through a .part file with a tqdm bar; return why the copy is short, if it is.

    Unreachable servers raise DataDownloadError with the way forward (a copy by hand, or the subset).
    """
    from tqdm.auto import tqdm

    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            written = 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=ARCHIVE, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
    except http.client.IncompleteRead as exc:
        part.unlink(missing_ok=True)
        return f"was cut short ({exc})"
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
        raise DataDownloadError(
            f"could not download CIFAR-10 from {url} ({reason}). To proceed, put {ARCHIVE} "
            f"{'' if md5 is None else f'(md5 {md5}) '}in {str(base)!r} by hand (or point root= or ${ENV_VAR} at a folder that holds it "
            f"or its extracted {FOLDER}/ folder). The bundled subset works offline: "
            "ov.load_cifar10(source='subset')."
        ) from exc
    if total is not None and written != total:
        part.unlink(missing_ok=True)
        return f"was cut short ({written} of {total} bytes)"
    os.replace(part, dest)
    return None


def _try_extract(archive: Path, folder: Path) -> str | None:
    try:
        _extract(archive, folder)
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
        return f"cannot be extracted ({type(exc).__name__}: {exc})"
    return None


def _extract(archive: Path, folder: Path) -> None:
    """Copy the seven expected members out (no arbitrary paths), into a temp folder renamed at the end."""
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=folder.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for name in FILES:
                member = tar.getmember(f"{FOLDER}/{name}")  # KeyError if missing
                src = tar.extractfile(member)
                if src is None:
                    raise ValueError(f"{FOLDER}/{name} in the archive is not a file")
                with src, open(tmp / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        _check_folder(tmp, shown=archive)
        os.replace(tmp, folder)
    except KeyError as exc:
        raise ValueError(f"the archive lacks {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_folder(folder: Path, shown: Path | None = None) -> None:
    where = str(shown or folder)
    expected = f"the CIFAR-10 python batches ({', '.join(FILES)}) as extracted from {ARCHIVE}"
    if not folder.is_dir():
        raise ValueError(f"{where!r} is not a folder; expected {expected}. {_folder_fix(folder)}")
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise ValueError(f"data folder {where!r} holds something else (missing {', '.join(missing)}); expected {expected}. "
                         f"{_folder_fix(folder)}")


def _folder_fix(folder: Path) -> str:
    """What to do about a bad extracted folder (it is the user's: optiviz does not delete it)."""
    return (f"To fix it, delete or rename {str(folder)!r} and load again: optiviz extracts it afresh from "
            f"{ARCHIVE} beside it (downloading that if missing); or pass root= a folder holding a good copy.")


def read_batches(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the official pickled batches (uint8 N x 3072, R then G then B planes) into (N, 3, 32, 32)."""
    folder = Path(folder)
    _check_folder(folder)
    xs, ys = [], []
    for name in TRAIN_BATCHES:
        x, y = _read_batch(folder, name)
        xs.append(x)
        ys.append(y)
    x_test, y_test = _read_batch(folder, "test_batch")
    return np.concatenate(xs), np.concatenate(ys), x_test, y_test


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles what a CIFAR-10 batch holds (a dict of numpy arrays, lists, bytes and numbers) and
    nothing else: a file placed in the data folder cannot run code when it is read."""

    ALLOWED = frozenset({
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        *((m, f) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for f in ("_reconstruct", "scalar")),
        *((m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric")),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which a CIFAR-10 batch does not hold")
        return super().find_class(module, name)


def _read_batch(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    path = folder / name
    bad = f"data folder {str(folder)!r} holds something else: {name} is not a CIFAR-10 python batch"
    fix = _folder_fix(folder)
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()  # the official files are Python 2 pickles
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, AttributeError, TypeError, ValueError, IndexError,
            OverflowError, UnicodeDecodeError, ImportError, MemoryError) as exc:  # whatever garbage raises
        raise ValueError(f"{bad} ({type(exc).__name__}: {str(exc)[:120]}); expected a dict with data (N, 3072) uint8 "
                         f"and labels. {fix}") from None
    if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (data.shape[0],) or labels.size == 0:
        raise ValueError(f"{bad} (data {data.shape}, labels {labels.shape}); expected data (N, 3072) and N labels. {fix}")
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{bad} (labels outside 0..9). {fix}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.uint8)
