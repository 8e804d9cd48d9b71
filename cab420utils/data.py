"""Dataset loaders: Fashion-MNIST, Omniglot and Lake's 20 one-shot runs.

Everything here works offline.  Files are looked up, in order, in the folders
that :func:`search_dirs` returns, each laid out like the course's
``shared/datasets`` folder (``<dir>/fashion-mnist/<file>``,
``<dir>/omniglot/<file>``).  Every file is checked against the SHA-256 that
its publisher's copy has (:data:`SHA256`), so a truncated download or a
half-copied file is reported as such instead of turning into a baffling
shape error three cells later.  Only when a file is found nowhere, and
downloads are allowed (``CAB420_OFFLINE`` is not ``1``), is it fetched from
its original source into the download cache, atomically.

Environment variables:

``CAB420_DATA``
    a folder laid out like ``shared/datasets``; searched first.
``CAB420_CACHE``
    where downloads (``<CAB420_CACHE>/datasets``) and resized Omniglot arrays
    (``<CAB420_CACHE>/omniglot``) are kept; default ``~/.cache/cab420``.
``CAB420_OFFLINE``
    ``1`` forbids downloading; missing data then raises
    :class:`DataNotFoundError` at once.

Conventions: Fashion-MNIST images stay ``uint8`` (0..255) as published;
Omniglot images are ``float32`` in [0, 1] with **1.0 = ink**, the inverse of
the published files (white background), so that resizing averages ink into
grey levels and a CNN sees the strokes as the signal.
"""
from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.client
import io
import os
import re
import tempfile
import urllib.request
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

__all__ = [
    "DataNotFoundError",
    "CorruptDataError",
    "FASHION_MNIST_CLASSES",
    "SHA256",
    "search_dirs",
    "find_file",
    "download_file",
    "safe_members",
    "FashionMNIST",
    "load_fashion_mnist",
    "OmniglotSet",
    "load_omniglot",
    "LakeRun",
    "load_lake_runs",
]

# --------------------------------------------------------------------------
# What the files are and where they come from
# --------------------------------------------------------------------------

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

#: SHA-256 of every file in ``shared/datasets`` (from its README).
SHA256: dict[str, str] = {
    "fashion-mnist/t10k-images-idx3-ubyte.gz":
        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz":
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    "fashion-mnist/train-images-idx3-ubyte.gz":
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "fashion-mnist/train-labels-idx1-ubyte.gz":
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "omniglot/all_runs.zip":
        "437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325",
    "omniglot/images_background_small1.zip":
        "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4",
    "omniglot/images_background_small2.zip":
        "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f",
    "omniglot/images_background.npz":
        "8bf84167413cd00beacdce3fe582f780ab538d8dbef043a6d688f2527bbce199",
    "omniglot/images_evaluation.npz":
        "0b84c7ffd94c4841c0040e529c86a82eaaccb986d8eadad5673f7991b7475276",
}

_FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
)
_LAKE_BASE = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"

#: Download URLs, tried in order.  The two ``.npz`` files have none: they
#: are a third party's conversion, so the full sets fall back to Lake's zips.
_SOURCES: dict[str, tuple[str, ...]] = {
    **{
        rel: tuple(base + rel.split("/", 1)[1] for base in _FASHION_MIRRORS)
        for rel in SHA256 if rel.startswith("fashion-mnist/")
    },
    "omniglot/images_background_small1.zip": (_LAKE_BASE + "images_background_small1.zip",),
    "omniglot/images_background_small2.zip": (_LAKE_BASE + "images_background_small2.zip",),
    "omniglot/all_runs.zip": (_LAKE_BASE + "one-shot-classification/all_runs.zip",),
    "omniglot/images_background.zip": (_LAKE_BASE + "images_background.zip",),
    "omniglot/images_evaluation.zip": (_LAKE_BASE + "images_evaluation.zip",),
}

#: Lake's full zips have no published SHA-256; they are checked by structure
#: after decoding instead (number of characters x 20 drawers of 105 x 105).
_FULL_SET_CHARS = {"background": 964, "evaluation": 659}
_SMALL_SET_CHARS = {"background_small1": 136, "background_small2": 156}
_OMNIGLOT_SUBSETS = tuple(_FULL_SET_CHARS) + tuple(_SMALL_SET_CHARS)
_DRAWERS = 20
_OMNIGLOT_SIDE = 105

_SYSTEM_DIRS = (Path("/usr/share/datasets"),)  # where Debian's dataset-* packages install
_TIMEOUT_S = 60
_CHUNK = 1 << 20
_MAX_MEMBER_BYTES = 8 << 20   # no Omniglot PNG is near this; guards against zip bombs
_RESIZE_TAG = "area1"         # bump when the resize changes, so old caches are ignored


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

class DataNotFoundError(FileNotFoundError):
    """A dataset file is in none of the searched folders and could not be downloaded.

    The message lists every place searched and how to get the file.
    """


class CorruptDataError(ValueError):
    """A dataset file exists but is not what it should be (wrong checksum,
    truncated, unreadable, unsafe archive, pickled npz).

    The message names the file, what was expected, and what to do.
    """


# --------------------------------------------------------------------------
# Where to look
# --------------------------------------------------------------------------

def _cache_root() -> Path:
    return Path(os.environ.get("CAB420_CACHE") or "~/.cache/cab420").expanduser().absolute()


def _download_dir() -> Path:
    return _cache_root() / "datasets"


def _offline() -> bool:
    return os.environ.get("CAB420_OFFLINE", "").strip() == "1"


def search_dirs() -> list[Path]:
    """The folders searched for dataset files, first match wins.

    In order: ``$CAB420_DATA`` (if set), the download cache
    ``$CAB420_CACHE/datasets`` (default ``~/.cache/cab420/datasets``),
    ``~/.keras/datasets`` (Keras' own cache, which uses the same
    ``fashion-mnist/<file>`` names) and ``/usr/share/datasets`` (Debian's
    ``dataset-fashion-mnist`` package).  Folders need not exist.
    """
    dirs = []
    env = os.environ.get("CAB420_DATA", "").strip()
    if env:
        dirs.append(Path(env).expanduser().absolute())
    dirs += [_download_dir(), Path("~/.keras/datasets").expanduser(), *_SYSTEM_DIRS]
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


# --------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------

#: (absolute path, size, mtime_ns) -> SHA-256 hex, so a 26 MB file is hashed
#: once per process, yet a file replaced on disk is hashed again.
_HASHES: dict[tuple[str, int, int], str] = {}


def _sha256_of(path: Path) -> str:
    try:
        st = path.stat()
        key = (str(path.absolute()), st.st_size, st.st_mtime_ns)
        if key not in _HASHES:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(_CHUNK), b""):
                    digest.update(chunk)
            _HASHES[key] = digest.hexdigest()
    except OSError as e:
        raise CorruptDataError(
            f"Cannot read {path}: {e}. Check its permissions, or delete it and run again "
            "to get a fresh copy."
        ) from e
    return _HASHES[key]


def _verify(path: Path, relpath: str) -> Path:
    expected = SHA256.get(relpath)
    if expected is None:
        return path  # checked by structure after decoding
    actual = _sha256_of(path)
    if actual != expected:
        raise CorruptDataError(
            f"{path} is corrupt or incomplete: its SHA-256 is {actual}, but the published "
            f"'{relpath}' has {expected}. Delete it (rm '{path}') and run again: it will be "
            "downloaded afresh, or found in the next folder of search_dirs()."
        )
    return path


# --------------------------------------------------------------------------
# Finding and downloading files
# --------------------------------------------------------------------------

def _how_to_get(relpath: str) -> list[str]:
    folder = relpath.split("/")[0]
    hints = []
    if relpath in _SOURCES:
        urls = " or ".join(_SOURCES[relpath])
        auto = " (or unset CAB420_OFFLINE and it is downloaded for you)" if _offline() else ""
        hints.append(f"download {urls} into {_download_dir() / folder}/{auto}")
    if folder == "fashion-mnist":
        hints.append("sudo apt-get install dataset-fashion-mnist  "
                     "(installs the files to /usr/share/datasets/fashion-mnist/)")
    if relpath.endswith(".npz"):
        subset = Path(relpath).stem.replace("images_", "")
        hints.append(
            "get it from https://github.com/bitsandscraps/omniglot, or allow downloads "
            f"and load_omniglot('{subset}') fetches {_LAKE_BASE}{Path(relpath).stem}.zip "
            "and converts it")
    return hints


def _not_found_message(relpaths: list[str], why: str) -> str:
    """Every place searched for ``relpaths``, why nothing was downloaded, and the ways out."""
    lines = [f"Could not find {' or '.join(repr(r) for r in relpaths)}. Searched:"]
    env_set = bool(os.environ.get("CAB420_DATA", "").strip())
    for i, d in enumerate(search_dirs()):
        note = "  ($CAB420_DATA)" if env_set and i == 0 else ""
        if not d.is_dir():
            note += "  (no such folder)"
        for rel in relpaths:
            lines.append(f"  - {d / rel}{note}")
            if (d / Path(rel).name).is_file():  # a common slip: CAB420_DATA one level too deep
                lines.append(f"    (note: {d / Path(rel).name} exists, but files must be "
                             f"in a '{Path(rel).parent}' subfolder)")
    if not env_set:
        lines.append("CAB420_DATA is not set.")
    lines += [why, "To fix this, do one of:"]
    lines += [f"  * {hint}" for rel in relpaths for hint in _how_to_get(rel)]
    lines.append("  * set CAB420_DATA to a folder laid out like the course's shared/datasets "
                 f"(holding {' or '.join(relpaths)}), e.g. export CAB420_DATA=/path/to/shared/datasets")
    return "\n".join(lines)


def _urlopen(url: str, timeout: float):
    """Open ``url`` for reading; tests replace this to simulate the network."""
    request = urllib.request.Request(url, headers={"User-Agent": "cab420utils"})
    return urllib.request.urlopen(request, timeout=timeout)


@contextlib.contextmanager
def _atomic_write(dest: Path) -> Iterator[io.BufferedWriter]:
    """Yield a temporary file next to ``dest``; move it into place only on success.

    Readers therefore see either no file or a complete one, never a partial
    download or a half-written cache, even after Ctrl-C or a crash.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the data is not secret
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def download_file(url: str, dest: str | os.PathLike, sha256: str | None = None,
                  *, timeout: float = _TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest`` atomically, checking ``sha256`` if given.

    Raises :class:`CorruptDataError` on a checksum mismatch; network errors
    propagate as ``OSError``/``http.client.HTTPException``.  Either way
    nothing is left at ``dest`` or beside it.
    """
    dest = Path(dest)
    with _atomic_write(dest) as out, _urlopen(url, timeout=timeout) as response:
        digest = hashlib.sha256()
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise CorruptDataError(
                f"Download of {url} is corrupt: its SHA-256 is {digest.hexdigest()}, "
                f"expected {sha256}. Nothing was saved; try again later, or get the file "
                f"another way and put it at {dest}."
            )
    return dest


def _download(relpath: str, searched: list[str]) -> Path:
    """Fetch ``relpath`` from its sources, in order, into the download cache.

    ``searched`` names the files looked for, for the error message.
    """
    dest = _download_dir() / relpath
    failures, corrupt = [], None
    for url in _SOURCES.get(relpath, ()):
        try:
            return download_file(url, dest, SHA256.get(relpath))
        except CorruptDataError as e:
            corrupt = e
            failures.append(f"{url}: wrong checksum")
        except (OSError, http.client.HTTPException) as e:
            failures.append(f"{url}: {e}")
    if corrupt is not None:
        raise corrupt
    why = ("Downloading failed:\n" + "\n".join(f"    {f}" for f in failures) if failures
           else f"'{relpath}' has no download URL.")
    raise DataNotFoundError(_not_found_message(searched, why))


def _find_local(relpath: str) -> Path | None:
    """The first copy of ``relpath`` in :func:`search_dirs`, checksum-verified, or None."""
    for d in search_dirs():
        candidate = d / relpath
        if candidate.is_file():
            return _verify(candidate, relpath)
    return None


def _find_or_download(relpath: str, download: bool | None, searched: list[str]) -> Path:
    found = _find_local(relpath)
    if found is not None:
        return found
    if download is False:
        raise DataNotFoundError(_not_found_message(searched, "Downloading is off (download=False)."))
    if download is None and _offline():
        raise DataNotFoundError(_not_found_message(searched, "Downloading is off (CAB420_OFFLINE=1)."))
    return _download(relpath, searched)


def find_file(relpath: str, *, download: bool | None = None) -> Path:
    """Return the local path of dataset file ``relpath``, e.g. ``'fashion-mnist/train-images-idx3-ubyte.gz'``.

    The first copy found in :func:`search_dirs` is checked against
    :data:`SHA256`; a wrong copy raises :class:`CorruptDataError` rather
    than being skipped, so that it gets deleted instead of haunting you.  If
    there is none, the file is downloaded into the cache when ``download`` is
    True, or None and ``CAB420_OFFLINE`` is not ``1``.
    """
    if relpath not in SHA256 and relpath not in _SOURCES:
        raise ValueError(f"Unknown dataset file {relpath!r}; known: {sorted({*SHA256, *_SOURCES})}")
    return _find_or_download(relpath, download, [relpath])


# --------------------------------------------------------------------------
# Reading archives, images and npz files safely
# --------------------------------------------------------------------------

def safe_members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The file (not folder) members of ``zf``, after refusing unsafe ones.

    A member whose path is absolute or climbs with ``..`` has no place in a
    dataset archive and would escape the folder if the archive were ever
    extracted, so the whole archive is refused; so is a member so large it
    can only be a decompression bomb.
    """
    members = []
    for info in zf.infolist():
        name = info.filename.replace("\\", "/")
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in name.split("/"):
            raise CorruptDataError(
                f"unsafe path in archive {zf.filename}: {info.filename!r} is absolute or "
                "contains '..'. This is not a genuine dataset archive: delete it and "
                "download it again from its original source."
            )
        if info.file_size > _MAX_MEMBER_BYTES:
            raise CorruptDataError(
                f"Archive {zf.filename}: member {info.filename!r} claims {info.file_size} bytes, "
                "far more than any dataset image. Delete the archive and download it again."
            )
        if not info.is_dir():
            members.append(info)
    return members


@contextlib.contextmanager
def _open_zip(path: Path) -> Iterator[tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]]:
    """Open a zip and yield it with its :func:`safe_members`.

    Errors reading it, including a member failing its CRC check inside the
    ``with`` block, become :class:`CorruptDataError` naming the archive.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            yield zf, safe_members(zf)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise CorruptDataError(
            f"{path} is not a readable zip archive ({e}). Delete it and download it again."
        ) from e


def _decode_ink(data: bytes, where: str) -> np.ndarray:
    """Decode one Omniglot PNG into a bool array, True where there is ink."""
    from PIL import Image, UnidentifiedImageError  # PIL comes with matplotlib

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.mode == "1":
                return ~np.asarray(img, dtype=bool)   # '1' mode: True = white paper
            return np.asarray(img.convert("L")) < 128
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise CorruptDataError(f"{where} is not a readable PNG image ({e}). "
                               "Delete the archive and download it again.") from e


def _read_npz(path: Path, shapes: dict[str, int]) -> dict[str, np.ndarray]:
    """Load ``path`` without pickle, checking each key in ``shapes`` has that many dimensions.

    ``allow_pickle=False`` because unpickling a downloaded file can run
    arbitrary code; a genuine numeric dataset never needs it.
    """
    unreadable = f"{path} is not a readable .npz file"
    if not zipfile.is_zipfile(path):  # else np.load would take it for a pickle
        raise CorruptDataError(f"{unreadable}. Delete it and get the file again.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as e:
        if "pickle" not in str(e).lower():
            raise CorruptDataError(f"{unreadable} ({e}). Delete it and get the file again.") from e
        raise CorruptDataError(
            f"{path} holds object arrays that would need pickle to load, which is unsafe "
            "and never needed for this data. Delete it and get the original file again."
        ) from e
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise CorruptDataError(f"{unreadable} ({e}). Delete it and get the file again.") from e
    for key, ndim in shapes.items():
        if key not in arrays or arrays[key].ndim != ndim:
            found = arrays[key].shape if key in arrays else "nothing"
            raise CorruptDataError(
                f"{path}: expected a {ndim}-D array {key!r}, found {found} (it holds "
                f"{sorted(arrays)}). Delete it and get the file again.")
    return arrays


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    with _atomic_write(path) as f:
        np.savez_compressed(f, **arrays)


# --------------------------------------------------------------------------
# Resizing
# --------------------------------------------------------------------------

def _check_size(size: int | None) -> None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer))
                             or size < 1):
        raise ValueError(f"size must be None (keep 105x105) or a positive int, not {size!r}")


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix averaging each output pixel's footprint in the input.

    Output pixel j covers input coordinates [j*s, (j+1)*s) with s = n_in/n_out;
    each input pixel contributes its overlap with that interval.  Rows sum to
    1, so binary images become grey levels in [0, 1] with no aliasing: thin
    strokes fade rather than vanish, unlike nearest-neighbour subsampling.
    """
    scale = n_in / n_out
    edges = np.arange(n_out + 1) * scale
    pixels = np.arange(n_in)
    lo = np.maximum(edges[:-1, None], pixels[None, :])
    hi = np.minimum(edges[1:, None], pixels[None, :] + 1)
    return (np.clip(hi - lo, 0, None) / scale).astype(np.float32)


def _ink_to_float(ink: np.ndarray, size: int | None, batch: int = 1024) -> np.ndarray:
    """Bool ink images (..., H, W) -> float32 in [0, 1], area-resized to size x size.

    The resize is two matrix products per batch (rows, then columns), which
    keeps memory bounded and runs in BLAS rather than a Python loop.
    """
    if size is None:
        return ink.astype(np.float32)
    *lead, h, w = ink.shape
    flat = ink.reshape(-1, h, w)
    wy, wx_t = _area_weights(h, size), _area_weights(w, size).T
    out = np.empty((flat.shape[0], size, size), np.float32)
    for start in range(0, flat.shape[0], batch):
        out[start:start + batch] = wy @ (flat[start:start + batch].astype(np.float32) @ wx_t)
    np.clip(out, 0.0, 1.0, out=out)
    return out.reshape(*lead, size, size)


# --------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------

def _parse_idx(raw: bytes, where: str, ndim: int) -> np.ndarray:
    """Parse an (uncompressed) IDX file of unsigned bytes with ``ndim`` dimensions.

    The header is 0x00 0x00, a type code (0x08 = uint8), the number of
    dimensions, then each size as a big-endian uint32.  Checking it against
    the byte count catches truncated or mixed-up files.
    """
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:4] != bytes([0, 0, 0x08, ndim]):
        raise CorruptDataError(
            f"{where} is not an IDX file of {ndim}-D unsigned bytes (header {raw[:4].hex()!r}, "
            f"expected '000008{ndim:02x}'). Delete it and download it again.")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    if len(raw) - header != int(np.prod(dims)):
        raise CorruptDataError(
            f"{where} is truncated or padded: its header declares {dims} = {int(np.prod(dims))} "
            f"bytes of data but it holds {len(raw) - header}. Delete it and download it again.")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _read_idx_gz(path: Path, ndim: int) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise CorruptDataError(f"{path} is not a complete gzip file ({e}). "
                               "Delete it and download it again.") from e
    return _parse_idx(raw, str(path), ndim)


@functools.lru_cache(maxsize=2)
def _fashion_arrays(files: tuple[tuple[str, int, int], ...]) -> tuple[np.ndarray, ...]:
    """Parse the four IDX files once per process (keyed by path, size and mtime)."""
    paths = [Path(p) for p, _, _ in files]
    x_train, x_test = _read_idx_gz(paths[0], 3), _read_idx_gz(paths[2], 3)
    y_train, y_test = (_read_idx_gz(paths[i], 1).astype(np.int64) for i in (1, 3))
    for x, y, n in ((x_train, y_train, 60000), (x_test, y_test, 10000)):
        if x.shape != (n, 28, 28) or y.shape != (n,) or y.max() >= len(FASHION_MNIST_CLASSES):
            raise CorruptDataError(
                f"Fashion-MNIST files {paths} do not hold {n} images of 28x28 with labels 0..9 "
                f"(got {x.shape}, {y.shape}). Delete them and download them again.")
    for a in (x_train, y_train, x_test, y_test):
        a.flags.writeable = False  # shared between calls: callers get copies
    return x_train, y_train, x_test, y_test


def _stratified_split(y: np.ndarray, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with ``n_val`` validation items, classes in proportion.

    Each class gets its share of ``n_val``, rounded by largest remainder so
    the total is exact; within a class, which items go is a seeded random
    choice.  Both index arrays are sorted, keeping the original order.
    """
    _, y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    exact = n_val * counts / len(y)
    quota = np.floor(exact).astype(np.int64)
    short = n_val - quota.sum()
    quota[np.argsort(-(exact - quota), kind="stable")[:short]] += 1

    order = np.random.default_rng(seed).permutation(len(y))
    order = order[np.argsort(y_idx[order], kind="stable")]   # grouped by class, shuffled within
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(y)) - starts[y_idx[order]]
    is_val = np.zeros(len(y), bool)
    is_val[order[rank < quota[y_idx[order]]]] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


@dataclass(frozen=True, eq=False, repr=False)
class FashionMNIST:
    """Fashion-MNIST split three ways; images uint8 (N, 28, 28), labels int64 (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...] = FASHION_MNIST_CLASSES

    def __repr__(self) -> str:
        return (f"FashionMNIST(train={self.x_train.shape}, val={self.x_val.shape}, "
                f"test={self.x_test.shape}, {len(self.class_names)} classes)")


def load_fashion_mnist(validation_size: int = 5000, seed: int = 0) -> FashionMNIST:
    """The standard 60,000 / 10,000 split, with a validation set carved out of train.

    ``x_val``/``y_val`` are ``validation_size`` items of the original
    training set, stratified by class and chosen by ``seed``, and removed
    from ``x_train`` so no image is in both.  ``validation_size=0`` gives an
    empty validation set.  The test set is untouched.
    """
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    paths = [find_file(f"fashion-mnist/{n}") for n in names]
    x_all, y_all, x_test, y_test = _fashion_arrays(
        tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths))
    if (isinstance(validation_size, bool) or not isinstance(validation_size, (int, np.integer))
            or not 0 <= validation_size < len(y_all)):
        raise ValueError(f"validation_size must be an int in [0, {len(y_all)}), "
                         f"not {validation_size!r}")
    train, val = _stratified_split(y_all, int(validation_size), seed)
    return FashionMNIST(x_all[train], y_all[train], x_all[val], y_all[val],
                        x_test.copy(), y_test.copy())


# --------------------------------------------------------------------------
# Omniglot
# --------------------------------------------------------------------------

@dataclass(frozen=True, eq=False, repr=False)
class OmniglotSet:
    """One Omniglot set: ``images`` (n_chars, 20, H, W) float32 in [0, 1], 1.0 = ink.

    ``labels`` (n_chars,) are 0-based in the original character-number order;
    ``alphabets`` (n_chars,) names each character's alphabet, or is None where
    the source keeps no names (the full sets' ``.npz`` files).
    """

    images: np.ndarray
    labels: np.ndarray
    alphabets: np.ndarray | None
    name: str

    def __repr__(self) -> str:
        n_alpha = "?" if self.alphabets is None else len(set(self.alphabets.tolist()))
        return (f"OmniglotSet(name={self.name!r}, images={self.images.shape}, "
                f"{len(self.labels)} characters, {n_alpha} alphabets)")


_PNG_PATH = re.compile(r"(?:^|/)(?P<alphabet>[^/]+)/(?P<folder>character\d+)/"
                       r"(?P<number>\d+)_(?P<drawer>\d+)\.png$")


def _decode_omniglot_zip(path: Path, n_chars: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode a Lake-style zip into (ink (n_chars, 20, 105, 105) bool, alphabets).

    Characters are ordered by the character number in the file names, the
    same order as the ``.npz`` conversions; the structure is checked because
    the full zips have no published checksum.
    """
    by_char: dict[tuple[str, str], list[tuple[int, int, zipfile.ZipInfo]]] = {}
    with _open_zip(path) as (zf, members):
        for info in members:
            m = _PNG_PATH.search(info.filename)
            if m:
                by_char.setdefault((m["alphabet"], m["folder"]), []).append(
                    (int(m["number"]), int(m["drawer"]), info))
        problems = [f"{len(by_char)} characters, expected {n_chars}"] if len(by_char) != n_chars else []
        problems += [f"{a}/{c} has {len(v)} drawings, expected {_DRAWERS}"
                     for (a, c), v in by_char.items() if len(v) != _DRAWERS]
        if problems:
            raise CorruptDataError(f"{path} does not have the layout of this Omniglot set: "
                                   f"{'; '.join(problems[:5])}. Delete it and download it again.")
        keys = sorted(by_char, key=lambda k: min(n for n, _, _ in by_char[k]))
        ink = np.empty((n_chars, _DRAWERS, _OMNIGLOT_SIDE, _OMNIGLOT_SIDE), bool)
        for i, key in enumerate(keys):
            for j, (_, _, info) in enumerate(sorted(by_char[key], key=lambda t: t[1])):
                where = f"{path}:{info.filename}"
                image = _decode_ink(zf.read(info), where)
                if image.shape != ink.shape[2:]:
                    raise CorruptDataError(f"{where} is {image.shape}, expected "
                                           f"{ink.shape[2:]}. Delete the archive and download it again.")
                ink[i, j] = image
    return ink, np.array([a for a, _ in keys])


def _full_set_from_npz(path: Path, n_chars: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(ink, labels, alphabets or None) from an npz laid out like the shared ones.

    That layout is ``images`` (n, 20, 105, 105) bool with True = paper and
    ``labels`` (n, 20); our own decoded copies add ``alphabets`` (n,).
    """
    arrays = _read_npz(path, {"images": 4, "labels": 2})
    images, labels = arrays["images"], arrays["labels"]
    expected = (n_chars, _DRAWERS, _OMNIGLOT_SIDE, _OMNIGLOT_SIDE)
    if (images.shape != expected or images.dtype != bool or labels.shape != expected[:2]
            or not (labels == labels[:, :1]).all()):
        raise CorruptDataError(
            f"{path} holds images {images.shape} {images.dtype} and labels {labels.shape}; "
            f"expected bool {expected} and one label per character. Delete it and get it again.")
    np.logical_not(images, out=images)  # published as True = paper; we want True = ink
    alphabets = arrays.get("alphabets")
    if alphabets is not None and alphabets.shape != (n_chars,):
        raise CorruptDataError(f"{path}: 'alphabets' has shape {alphabets.shape}, expected "
                               f"({n_chars},). Delete it and get it again.")
    return images, labels[:, 0].astype(np.int64), alphabets


def _decoded_path(subset: str) -> Path:
    """Where a full set decoded from Lake's zip is kept (not the shared npz's name,
    whose checksum it would fail)."""
    return _download_dir() / "omniglot" / f"images_{subset}.from_zip.npz"


def _load_full_set(subset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    """(ink, labels, alphabets, source sha) for 'background' or 'evaluation'.

    Prefers the checksummed ``.npz``.  Without it, Lake's zip (found locally
    or downloaded) is decoded once, checked by structure, and kept as
    :func:`_decoded_path` in the same layout plus alphabet names.
    """
    n_chars = _FULL_SET_CHARS[subset]
    npz_rel, zip_rel = f"omniglot/images_{subset}.npz", f"omniglot/images_{subset}.zip"
    source = _find_local(npz_rel)
    if source is None:
        source = _decoded_path(subset)
        if not source.is_file():
            _decode_full_zip(subset, _find_or_download(zip_rel, None, [npz_rel, zip_rel]))
    return (*_full_set_from_npz(source, n_chars), _sha256_of(source))


def _decode_full_zip(subset: str, zip_path: Path) -> None:
    """Decode Lake's full-set zip into :func:`_decoded_path`; drop the zip if we downloaded it."""
    n_chars = _FULL_SET_CHARS[subset]
    downloaded = zip_path.parent.parent == _download_dir()
    try:
        ink, alphabets = _decode_omniglot_zip(zip_path, n_chars)
    except CorruptDataError:
        if downloaded:
            zip_path.unlink(missing_ok=True)
        raise
    labels = np.repeat(np.arange(n_chars, dtype=np.int64)[:, None], _DRAWERS, axis=1)
    _write_npz(_decoded_path(subset), images=~ink, labels=labels, alphabets=alphabets)
    if downloaded:
        zip_path.unlink(missing_ok=True)  # the decoded npz replaces it


def _load_small_set(subset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    path = find_file(f"omniglot/images_{subset}.zip")
    ink, alphabets = _decode_omniglot_zip(path, _SMALL_SET_CHARS[subset])
    return ink, np.arange(len(ink), dtype=np.int64), alphabets, _sha256_of(path)


def _source_sha(subset: str) -> str | None:
    """Checksum of the file ``subset`` is loaded from, without decoding it; None if
    that file does not exist yet (a full set still to be downloaded and decoded)."""
    if subset in _SMALL_SET_CHARS:
        return _sha256_of(find_file(f"omniglot/images_{subset}.zip"))
    source = _find_local(f"omniglot/images_{subset}.npz") or _decoded_path(subset)
    return _sha256_of(source) if source.is_file() else None


def _read_resize_cache(path: Path, subset: str) -> OmniglotSet | None:
    """The cached resized set, or None if absent or unreadable (then it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        a = _read_npz(path, {"images": 4, "labels": 1})
    except CorruptDataError as e:
        warnings.warn(f"Ignoring unreadable cache file {path}; rebuilding it. ({e})")
        return None
    return OmniglotSet(a["images"], a["labels"], a.get("alphabets"), subset)


def load_omniglot(subset: str = "background", size: int | None = None) -> OmniglotSet:
    """Load an Omniglot set as float32 images with ink = 1.0.

    ``subset`` is one of 'background' (964 characters of 30 alphabets, for
    training), 'evaluation' (659 characters of 20 other alphabets, for
    testing), 'background_small1' (136) or 'background_small2' (156).
    ``size=None`` keeps 105 x 105; an int area-averages to ``size x size``,
    and the result is cached in ``$CAB420_CACHE/omniglot`` keyed by subset,
    size and the source's checksum, so the next load skips decoding.
    """
    if subset not in _OMNIGLOT_SUBSETS:
        raise ValueError(f"Unknown Omniglot subset {subset!r}; choose one of {list(_OMNIGLOT_SUBSETS)}")
    _check_size(size)
    loader = _load_full_set if subset in _FULL_SET_CHARS else _load_small_set
    if size is None:
        ink, labels, alphabets, _ = loader(subset)
        return OmniglotSet(_ink_to_float(ink, None), labels, alphabets, subset)

    loaded, source_sha = None, _source_sha(subset)
    if source_sha is None:  # a full set not on disk yet: download and decode it first
        loaded = loader(subset)
        source_sha = loaded[3]
    cache = _cache_root() / "omniglot" / f"{subset}-{size}px-{source_sha[:16]}-{_RESIZE_TAG}.npz"
    cached = _read_resize_cache(cache, subset)
    if cached is not None:
        return cached
    ink, labels, alphabets, _ = loaded or loader(subset)
    images = _ink_to_float(ink, int(size))
    _write_npz(cache, images=images, labels=labels,
               **({} if alphabets is None else {"alphabets": alphabets}))
    return OmniglotSet(images, labels, alphabets, subset)


def load_omniglot_background(size: int | None = None) -> tuple[OmniglotSet, str]:
    """The background set for training, and a sentence saying which one.

    The full set (964 characters, 30 alphabets) when it can be had; otherwise
    the two small background sets together (292 characters), which Lake et al.
    also offer — with the reason, for the notebook to show at its top.
    """
    try:
        return load_omniglot("background", size=size), "the full background set (30 alphabets)"
    except DataNotFoundError as error:
        small = [load_omniglot(s, size=size) for s in ("background_small1", "background_small2")]
        merged = OmniglotSet(np.concatenate([s.images for s in small]),
                             np.arange(sum(len(s.labels) for s in small)), None, "background_small1+2")
        return merged, (f"the two small background sets (the full set is missing: "
                        f"{str(error).splitlines()[0]})")


# --------------------------------------------------------------------------
# Lake's 20 one-shot classification runs
# --------------------------------------------------------------------------

@dataclass(frozen=True, eq=False, repr=False)
class LakeRun:
    """One of Lake et al.'s 20-way one-shot runs.

    ``train_images`` (20, H, W) are one drawing of each of 20 characters;
    ``test_images`` (20, H, W) are other drawings of the same characters,
    and ``answers[i]`` is the index into ``train_images`` of test image i's
    character.  Images are float32 with ink = 1.0.
    """

    name: str
    train_images: np.ndarray
    test_images: np.ndarray
    answers: np.ndarray
    train_paths: np.ndarray
    test_paths: np.ndarray

    def __repr__(self) -> str:
        return f"LakeRun({self.name!r}, {len(self.train_images)}-way, images {self.train_images.shape[1:]})"


_RUN_PATH = re.compile(r"(?:^|/)(?P<path>(?P<run>run\d\d)/(?:training/class|test/item)\d\d\.png"
                       r"|(?P<labels_run>run\d\d)/class_labels\.txt)$")


def load_lake_runs(size: int | None = None) -> list[LakeRun]:
    """The 20 runs of ``all_runs.zip``, answers parsed from each ``class_labels.txt``.

    Accuracy on these runs is the number the Omniglot literature quotes for
    20-way one-shot classification, so evaluate on them exactly as given.
    """
    _check_size(size)
    path = find_file("omniglot/all_runs.zip")
    images: dict[str, np.ndarray] = {}
    label_text: dict[str, str] = {}
    with _open_zip(path) as (zf, members):
        for info in members:
            m = _RUN_PATH.search(info.filename)
            if not m:
                continue
            data = zf.read(info)
            if m["labels_run"]:
                label_text[m["labels_run"]] = data.decode("ascii", "replace")
            else:
                images[m["path"]] = _decode_ink(data, f"{path}:{info.filename}")

    runs = []
    for run in sorted(label_text):
        train_paths = np.array(sorted(p for p in images if p.startswith(f"{run}/training/")))
        test_paths = np.array(sorted(p for p in images if p.startswith(f"{run}/test/")))
        answers = _parse_answers(label_text[run], train_paths, test_paths, f"{path}:{run}")
        runs.append(LakeRun(run, _stack(images, train_paths, size, path),
                            _stack(images, test_paths, size, path), answers, train_paths, test_paths))
    if len(runs) != 20:
        raise CorruptDataError(f"{path} holds {len(runs)} runs with class_labels.txt, expected 20. "
                               "Delete it and download it again.")
    return runs


def _parse_answers(text: str, train_paths: np.ndarray, test_paths: np.ndarray,
                   where: str) -> np.ndarray:
    """Map each test image to the index of its training image, from class_labels.txt lines."""
    if len(train_paths) != 20 or len(test_paths) != 20:
        raise CorruptDataError(f"{where} has {len(train_paths)} training and {len(test_paths)} "
                               "test images, expected 20 each. Delete the archive and download it again.")
    pairs = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
    train_index = {p: i for i, p in enumerate(train_paths.tolist())}
    try:
        return np.array([train_index[pairs[t]] for t in test_paths.tolist()], np.int64)
    except KeyError as e:
        raise CorruptDataError(f"{where}: class_labels.txt names no valid training image for "
                               f"{e}. Delete the archive and download it again.") from None


def _stack(images: dict[str, np.ndarray], paths: np.ndarray, size: int | None,
           archive: Path) -> np.ndarray:
    """The images at ``paths`` as one float32 ink array, resized to ``size``."""
    shapes = {images[p].shape for p in paths.tolist()}
    if len(shapes) != 1:
        raise CorruptDataError(f"{archive}: images of one run differ in size ({sorted(shapes)}). "
                               "Delete the archive and download it again.")
    return _ink_to_float(np.stack([images[p] for p in paths.tolist()]), size)
