"""Tests for cab420utils.data: real-data loaders, and how they fail.

Real-data tests read the shared datasets through CAB420_DATA (default: the
checkout's sibling ``../shared/datasets``).  Without them those tests are
skipped, unless CAB420_REQUIRE_DATA=1, in which case they fail.  Every test
runs with CAB420_OFFLINE=1, a temporary CAB420_CACHE and HOME, and no system
dataset folder, so nothing touches the network or the real home folder.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cab420utils import data

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
LABELS_REL = "fashion-mnist/train-labels-idx1-ubyte.gz"  # the smallest checksummed file
# The real environment, captured before the fixtures below replace it.
_REAL_DATA_ENV = os.environ.get("CAB420_DATA", "").strip()


def _real_data_or_skip(*relpaths: str) -> Path:
    """The real datasets folder, if it holds ``relpaths`` (default: all); else skip.

    With CAB420_REQUIRE_DATA=1 (CI with the data mounted) missing data fails
    the test instead, so a misconfigured CI cannot pass by skipping.
    """
    root = Path(_REAL_DATA_ENV).expanduser() if _REAL_DATA_ENV else DEFAULT_SHARED
    missing = [r for r in (relpaths or tuple(data.SHA256)) if not (root / r).is_file()]
    if missing:
        message = f"real datasets not found in {root} (missing {missing}); set CAB420_DATA"
        if os.environ.get("CAB420_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Offline, with a private cache, home and system folder; CAB420_DATA unset."""
    monkeypatch.setenv("CAB420_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CAB420_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CAB420_DATA", raising=False)
    monkeypatch.setattr(data, "_SYSTEM_DIRS", (tmp_path / "system",))

    def no_network(url, timeout):
        raise AssertionError(f"test tried to reach the network: {url}")

    monkeypatch.setattr(data, "_urlopen", no_network)
    return tmp_path


@pytest.fixture
def real(monkeypatch) -> Path:
    root = _real_data_or_skip()
    monkeypatch.setenv("CAB420_DATA", str(root))
    return root


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _image_keys(x: np.ndarray) -> np.ndarray:
    """One int64 per image (a fixed random projection), to compare image multisets."""
    weights = np.random.default_rng(42).integers(1, 2**31, x[0].size)
    return np.sort(x.reshape(len(x), -1).astype(np.int64) @ weights)


# --------------------------------------------------------------------------
# Search order
# --------------------------------------------------------------------------

def test_search_dirs_in_documented_order(isolated, monkeypatch):
    monkeypatch.setenv("CAB420_DATA", str(isolated / "mine"))
    assert data.search_dirs() == [isolated / "mine", isolated / "cache" / "datasets",
                                  isolated / "home" / ".keras" / "datasets", isolated / "system"]
    monkeypatch.delenv("CAB420_DATA")
    assert data.search_dirs()[0] == isolated / "cache" / "datasets"


def test_keras_cache_layout_is_found(isolated):
    root = _real_data_or_skip(LABELS_REL)
    keras = isolated / "home" / ".keras" / "datasets" / LABELS_REL
    keras.parent.mkdir(parents=True)
    keras.write_bytes((root / LABELS_REL).read_bytes())
    assert data.find_file(LABELS_REL) == keras


# --------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------

def test_fashion_mnist_shapes_dtypes_and_classes(real):
    fm = data.load_fashion_mnist()
    assert fm.x_train.shape == (55000, 28, 28) and fm.x_val.shape == (5000, 28, 28)
    assert fm.x_test.shape == (10000, 28, 28)
    for x, y in ((fm.x_train, fm.y_train), (fm.x_val, fm.y_val), (fm.x_test, fm.y_test)):
        assert x.dtype == np.uint8 and y.dtype == np.int64 and len(x) == len(y)
    assert fm.x_train.max() == 255
    assert fm.class_names == data.FASHION_MNIST_CLASSES and len(fm.class_names) == 10
    # The original training set has 6,000 of each class; validation takes 500 of each.
    np.testing.assert_array_equal(np.bincount(np.concatenate([fm.y_train, fm.y_val])), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(fm.y_val), [500] * 10)
    np.testing.assert_array_equal(np.bincount(fm.y_test), [1000] * 10)


def test_fashion_mnist_validation_is_disjoint_seeded_split_of_train(real):
    everything = data.load_fashion_mnist(validation_size=0)
    assert everything.x_train.shape == (60000, 28, 28) and everything.x_val.shape == (0, 28, 28)

    a, b = data.load_fashion_mnist(seed=1), data.load_fashion_mnist(seed=1)
    other = data.load_fashion_mnist(seed=2)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_val, other.x_val)
    # train + val is exactly the original training set: nothing lost, nothing in both.
    np.testing.assert_array_equal(_image_keys(np.concatenate([a.x_train, a.x_val])),
                                  _image_keys(everything.x_train))
    np.testing.assert_array_equal(a.x_test, everything.x_test)

    odd = data.load_fashion_mnist(validation_size=1234)
    assert len(odd.y_val) == 1234 and np.bincount(odd.y_val).max() - np.bincount(odd.y_val).min() <= 1


def test_stratified_split_indices_partition_the_data():
    y = np.repeat(np.arange(3), [50, 30, 20])
    train, val = data._stratified_split(y, 10, seed=0)
    assert len(np.intersect1d(train, val)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(100))
    np.testing.assert_array_equal(np.bincount(y[val]), [5, 3, 2])


def test_fashion_mnist_arguments_are_checked(real):
    for bad in (-1, 60000, 0.5, True):
        with pytest.raises(ValueError):
            data.load_fashion_mnist(validation_size=bad)


def test_fashion_mnist_parsed_once_and_callers_cannot_corrupt_the_memo(real):
    first = data.load_fashion_mnist()
    hits = data._fashion_arrays.cache_info().hits
    first.x_test[:] = 0
    first.x_train[:] = 0
    second = data.load_fashion_mnist()
    assert data._fashion_arrays.cache_info().hits == hits + 1
    assert second.x_test.max() == 255 and second.x_train.max() == 255


# --------------------------------------------------------------------------
# Omniglot
# --------------------------------------------------------------------------

@pytest.mark.parametrize("subset, n_chars", [("background", 964), ("evaluation", 659)])
def test_omniglot_full_sets(real, subset, n_chars):
    s = data.load_omniglot(subset, size=28)
    assert s.images.shape == (n_chars, 20, 28, 28) and s.images.dtype == np.float32
    np.testing.assert_array_equal(s.labels, np.arange(n_chars))
    assert s.alphabets is None  # the npz files keep no alphabet names
    assert s.name == subset
    assert 0.0 <= s.images.min() and s.images.max() <= 1.0
    # Ink is the minority (about 8% of pixels), so 1.0 must mean ink, not paper.
    assert 0.02 < s.images.mean() < 0.2


@pytest.mark.parametrize("subset, n_chars, alphabets",
                         [("background_small1", 136, {"Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"}),
                          ("background_small2", 156, {"Greek", "Japanese_(katakana)", "Latin",
                                                      "Sanskrit", "Tagalog"})])
def test_omniglot_small_sets(real, subset, n_chars, alphabets):
    s = data.load_omniglot(subset)
    assert s.images.shape == (n_chars, 20, 105, 105) and s.images.dtype == np.float32
    np.testing.assert_array_equal(np.unique(s.images), [0.0, 1.0])
    assert 0.02 < s.images.mean() < 0.2
    np.testing.assert_array_equal(s.labels, np.arange(n_chars))
    assert s.alphabets.shape == (n_chars,) and len(set(s.alphabets)) == 5
    assert set(s.alphabets.tolist()) == alphabets


def test_zip_and_npz_decoders_agree(real):
    """small1's characters are background characters: same pixels, same ink polarity, same order."""
    small = data.load_omniglot("background_small1").images.astype(bool)
    with np.load(real / "omniglot" / "images_background.npz") as npz:
        ink = ~npz["images"]
    index = {np.packbits(ink[i, 0]).tobytes(): i for i in range(len(ink))}
    where = np.array([index[np.packbits(c[0]).tobytes()] for c in small])
    assert (np.diff(where) > 0).all()  # both ordered by character number
    np.testing.assert_array_equal(small, ink[where])


def test_omniglot_resize_is_cached_and_preserves_ink(real, isolated):
    t0 = time.perf_counter()
    small = data.load_omniglot("background_small1", size=28)
    t1 = time.perf_counter()
    again = data.load_omniglot("background_small1", size=28)
    t2 = time.perf_counter()
    full = data.load_omniglot("background_small1")

    assert small.images.shape == (136, 20, 28, 28)
    cached = _files_under(isolated / "cache" / "omniglot")
    assert len(cached) == 1 and cached[0].suffix == ".npz" and "28" in cached[0].name
    np.testing.assert_array_equal(small.images, again.images)
    np.testing.assert_array_equal(small.alphabets, again.alphabets)
    assert t2 - t1 < t1 - t0
    # Area averaging keeps each image's total ink, scaled by the area ratio.
    np.testing.assert_allclose(small.images.sum(axis=(2, 3)) * (105 / 28) ** 2,
                               full.images.sum(axis=(2, 3)), rtol=1e-4)
    assert data.load_omniglot("background_small1", size=32).images.shape == (136, 20, 32, 32)


def test_unreadable_resize_cache_is_rebuilt(real, isolated):
    data.load_omniglot("background_small2", size=20)
    [cache] = _files_under(isolated / "cache" / "omniglot")
    cache.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="rebuilding"):
        s = data.load_omniglot("background_small2", size=20)
    assert s.images.shape == (156, 20, 20, 20)
    assert data._read_npz(cache, {"images": 4})["images"].shape == (156, 20, 20, 20)


def test_omniglot_arguments_are_checked(isolated):
    with pytest.raises(ValueError, match="background_small1"):
        data.load_omniglot("backgroud")
    for bad in (0, -3, 2.5, "28"):
        with pytest.raises(ValueError):
            data.load_omniglot("background", size=bad)
    with pytest.raises(ValueError):
        data.find_file("omniglot/nonsense.zip")


def test_area_resize_of_a_known_image():
    ink = np.zeros((1, 4, 4), bool)
    ink[0, :2, :2] = True
    np.testing.assert_array_equal(data._ink_to_float(ink, 2)[0], [[1, 0], [0, 0]])
    np.testing.assert_allclose(data._area_weights(3, 2), [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]],
                               rtol=1e-6)


# --------------------------------------------------------------------------
# Lake's one-shot runs
# --------------------------------------------------------------------------

def test_lake_runs(real):
    runs = data.load_lake_runs()
    assert [r.name for r in runs] == [f"run{i:02d}" for i in range(1, 21)]
    for r in runs:
        assert r.train_images.shape == (20, 105, 105) and r.test_images.shape == (20, 105, 105)
        assert r.train_images.dtype == np.float32 and 0.02 < r.test_images.mean() < 0.2
        assert r.answers.dtype.kind == "i"
        np.testing.assert_array_equal(np.sort(r.answers), np.arange(20))  # one test item per class
        assert list(r.test_paths) == [f"{r.name}/test/item{i:02d}.png" for i in range(1, 21)]
        assert list(r.train_paths) == [f"{r.name}/training/class{i:02d}.png" for i in range(1, 21)]
    # From run01/class_labels.txt: "run01/test/item01.png run01/training/class08.png".
    assert runs[0].train_paths[runs[0].answers[0]] == "run01/training/class08.png"
    small = data.load_lake_runs(size=28)
    assert small[0].train_images.shape == (20, 28, 28)
    np.testing.assert_array_equal(small[5].answers, runs[5].answers)


# --------------------------------------------------------------------------
# Missing and corrupt data
# --------------------------------------------------------------------------

@pytest.mark.parametrize("load", [data.load_fashion_mnist, lambda: data.load_omniglot("evaluation"),
                                  lambda: data.load_omniglot("background_small2"), data.load_lake_runs],
                         ids=["fashion", "omniglot-evaluation", "omniglot-small2", "lake-runs"])
def test_missing_data_offline_says_where_it_looked(isolated, monkeypatch, load):
    monkeypatch.setenv("CAB420_DATA", str(isolated / "nowhere"))
    with pytest.raises(data.DataNotFoundError) as err:
        load()
    assert isinstance(err.value, FileNotFoundError)
    message = str(err.value)
    for d in data.search_dirs():
        assert str(d) in message
    assert "CAB420_DATA" in message and "CAB420_OFFLINE" in message
    assert "http" in message  # where to download it from


def test_missing_fashion_mnist_mentions_apt(isolated):
    with pytest.raises(data.DataNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        data.find_file(LABELS_REL)
    assert "CAB420_DATA is not set" in str(err.value)


def test_corrupt_copy_is_reported_not_skipped(isolated, monkeypatch):
    root = _real_data_or_skip(LABELS_REL)
    good = (root / LABELS_REL).read_bytes()
    bad_path = isolated / "mine" / LABELS_REL
    bad_path.parent.mkdir(parents=True)
    bad_path.write_bytes(good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])
    # A good copy later in the search order must not hide the bad one.
    (isolated / "system" / "fashion-mnist").mkdir(parents=True)
    (isolated / "system" / LABELS_REL).write_bytes(good)
    monkeypatch.setenv("CAB420_DATA", str(isolated / "mine"))
    with pytest.raises(data.CorruptDataError) as err:
        data.find_file(LABELS_REL)
    assert str(bad_path) in str(err.value) and data.SHA256[LABELS_REL] in str(err.value)
    assert "Delete" in str(err.value)
    assert isinstance(err.value, ValueError)

    bad_path.write_bytes(good[: len(good) // 2])  # truncated copy: also a checksum failure
    with pytest.raises(data.CorruptDataError, match=re.escape(str(bad_path))):
        data.find_file(LABELS_REL)

    bad_path.write_bytes(good)  # fixed: found again, verified, and used
    assert data.find_file(LABELS_REL) == bad_path


def _idx(dims: tuple[int, ...], n_bytes: int) -> bytes:
    header = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + bytes(n_bytes)


def test_truncated_or_malformed_idx_is_refused(isolated):
    path = isolated / "x.gz"
    path.write_bytes(gzip.compress(_idx((10, 28, 28), 10 * 28 * 28)))
    assert data._read_idx_gz(path, 3).shape == (10, 28, 28)

    path.write_bytes(gzip.compress(_idx((10, 28, 28), 9 * 28 * 28)))
    with pytest.raises(data.CorruptDataError, match="truncated") as err:
        data._read_idx_gz(path, 3)
    assert str(path) in str(err.value)

    path.write_bytes(gzip.compress(_idx((10,), 10)))  # a labels file where images were expected
    with pytest.raises(data.CorruptDataError, match="not an IDX file"):
        data._read_idx_gz(path, 3)

    path.write_bytes(gzip.compress(_idx((10, 28, 28), 10 * 28 * 28))[:-20])  # cut-off gzip
    with pytest.raises(data.CorruptDataError, match="gzip"):
        data._read_idx_gz(path, 3)


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, payload in members.items():
            zf.writestr(zipfile.ZipInfo(name), payload)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["../evil.png", "images_background/../../evil.png", "/etc/evil.png"])
def test_zip_with_unsafe_member_is_refused(isolated, name):
    path = isolated / "evil.zip"
    path.write_bytes(_zip_bytes({"images_background/A/character01/0001_01.png": b"", name: b"x"}))
    with zipfile.ZipFile(path) as zf, pytest.raises(data.CorruptDataError, match="unsafe path in archive"):
        data.safe_members(zf)
    with pytest.raises(data.CorruptDataError, match="unsafe path in archive"):
        data._decode_omniglot_zip(path, 1)


def test_safe_members_lists_files_only(isolated):
    path = isolated / "ok.zip"
    path.write_bytes(_zip_bytes({"a/": b"", "a/b.png": b"1"}))
    with zipfile.ZipFile(path) as zf:
        assert [m.filename for m in data.safe_members(zf)] == ["a/b.png"]


def test_npz_needing_pickle_is_refused(isolated, monkeypatch):
    path = isolated / "evil.npz"
    np.savez(path, images=np.array([{"x": 1}], dtype=object), labels=np.zeros((1, 20)))
    with pytest.raises(data.CorruptDataError, match="pickle") as err:
        data._read_npz(path, {"images": 4, "labels": 2})
    assert str(path) in str(err.value)
    # The same through a loader: a decoded full set in the cache that needs pickle.
    decoded = data._decoded_path("evaluation")
    decoded.parent.mkdir(parents=True)
    decoded.write_bytes(path.read_bytes())
    with pytest.raises(data.CorruptDataError, match="pickle"):
        data.load_omniglot("evaluation")


def test_unreadable_npz_and_zip_are_refused(isolated):
    path = isolated / "garbage.npz"
    path.write_bytes(b"this is not numpy data")
    with pytest.raises(data.CorruptDataError, match="not a readable .npz"):
        data._read_npz(path, {"images": 4})

    good = _zip_bytes({"images_background/A/character01/0001_01.png": b"P" * 64})
    bad = good.replace(b"P" * 64, b"Q" * 64)  # payload changed, CRC not: fails its CRC check
    path = isolated / "bad.zip"
    path.write_bytes(bad)
    with pytest.raises(data.CorruptDataError, match=re.escape(str(path))):
        data._decode_omniglot_zip(path, 1)
    path.write_bytes(b"not a zip")
    with pytest.raises(data.CorruptDataError, match="not a readable zip"):
        data._decode_omniglot_zip(path, 1)


def test_required_data_fails_instead_of_skipping(monkeypatch, isolated):
    monkeypatch.setattr(sys.modules[__name__], "_REAL_DATA_ENV", str(isolated / "nowhere"))
    monkeypatch.setenv("CAB420_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="real datasets not found"):
        _real_data_or_skip()
    monkeypatch.delenv("CAB420_REQUIRE_DATA")
    with pytest.raises(pytest.skip.Exception):
        _real_data_or_skip()


# --------------------------------------------------------------------------
# Downloads (simulated: data._urlopen is replaced)
# --------------------------------------------------------------------------

class _FailingStream(io.BytesIO):
    """A response that delivers some bytes and then fails, like a dropped connection."""

    def __init__(self, payload: bytes, error: BaseException):
        super().__init__(payload)
        self.error = error

    def read(self, n=-1):
        if self.tell() > 0:
            raise self.error
        return super().read(min(n, 1000) if n and n > 0 else 1000)


def test_download_with_wrong_checksum_leaves_nothing(isolated, monkeypatch):
    tried = []

    def wrong_bytes(url, timeout):
        tried.append(url)
        return io.BytesIO(b"<html>Not the file you wanted</html>")

    monkeypatch.setattr(data, "_urlopen", wrong_bytes)
    with pytest.raises(data.CorruptDataError, match="SHA-256"):
        data.find_file(LABELS_REL, download=True)
    assert tried == list(data._SOURCES[LABELS_REL])  # each mirror, in order
    assert _files_under(isolated / "cache") == []


@pytest.mark.parametrize("error, expected", [(ConnectionResetError("connection reset"), data.DataNotFoundError),
                                             (KeyboardInterrupt(), KeyboardInterrupt)])
def test_download_failing_mid_stream_leaves_nothing(isolated, monkeypatch, error, expected):
    monkeypatch.setattr(data, "_urlopen", lambda url, timeout: _FailingStream(b"x" * 5000, error))
    monkeypatch.delenv("CAB420_OFFLINE")
    with pytest.raises(expected) as err:
        data.find_file(LABELS_REL)
    if expected is data.DataNotFoundError:
        assert "connection reset" in str(err.value) and data._SOURCES[LABELS_REL][0] in str(err.value)
    assert _files_under(isolated / "cache") == []


def test_good_download_lands_atomically_and_is_reused(isolated, monkeypatch):
    root = _real_data_or_skip(LABELS_REL)
    payload = (root / LABELS_REL).read_bytes()
    seen_during_download = []

    def serve(url, timeout):
        assert timeout and timeout > 0
        # While the download runs, the final name must not exist yet.
        seen_during_download.append((isolated / "cache" / "datasets" / LABELS_REL).exists())
        return io.BytesIO(payload)

    monkeypatch.setattr(data, "_urlopen", serve)
    path = data.find_file(LABELS_REL, download=True)
    assert path == isolated / "cache" / "datasets" / LABELS_REL
    assert seen_during_download == [False]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == data.SHA256[LABELS_REL]
    assert _files_under(isolated / "cache") == [path]  # no temporary file left behind

    monkeypatch.setattr(data, "_urlopen", lambda url, timeout: pytest.fail("downloaded twice"))
    assert data.find_file(LABELS_REL) == path


def test_offline_never_downloads(isolated):
    # The autouse fixture's _urlopen fails the test if called.
    with pytest.raises(data.DataNotFoundError, match="CAB420_OFFLINE=1"):
        data.find_file(LABELS_REL)
    with pytest.raises(data.DataNotFoundError, match="download=False"):
        data.find_file(LABELS_REL, download=False)


def _lake_style_zip(real: Path, top: str, n_chars: int) -> bytes:
    """A Lake-style full-set zip made of the first ``n_chars`` characters of small1."""
    members = {}
    with zipfile.ZipFile(real / "omniglot" / "images_background_small1.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".png"))
        for name in names[: 20 * n_chars]:
            members[top + "/" + name.split("/", 1)[1]] = zf.read(name)
    return _zip_bytes(members)


def test_full_set_falls_back_to_lakes_zip_and_keeps_decoded_copy(isolated, monkeypatch):
    root = _real_data_or_skip("omniglot/images_background_small1.zip")
    monkeypatch.setitem(data._FULL_SET_CHARS, "evaluation", 3)  # a 3-character stand-in
    payload = _lake_style_zip(root, "images_evaluation", 3)
    tried = []

    def serve(url, timeout):
        tried.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(data, "_urlopen", serve)
    monkeypatch.delenv("CAB420_OFFLINE")
    s = data.load_omniglot("evaluation")
    assert tried == [data._LAKE_BASE + "images_evaluation.zip"]
    assert s.images.shape == (3, 20, 105, 105)
    assert list(s.alphabets) == ["Balinese"] * 3 and list(s.labels) == [0, 1, 2]
    monkeypatch.setenv("CAB420_DATA", str(root))
    np.testing.assert_array_equal(s.images, data.load_omniglot("background_small1").images[:3])
    monkeypatch.delenv("CAB420_DATA")
    # The decoded copy replaces the zip and serves later loads offline.
    assert _files_under(isolated / "cache" / "datasets") == [data._decoded_path("evaluation")]
    monkeypatch.setenv("CAB420_OFFLINE", "1")
    monkeypatch.setattr(data, "_urlopen", lambda url, timeout: pytest.fail("downloaded twice"))
    resized = data.load_omniglot("evaluation", size=28)
    assert resized.images.shape == (3, 20, 28, 28) and list(resized.alphabets) == ["Balinese"] * 3


def test_full_set_zip_with_wrong_structure_is_refused_and_dropped(isolated, monkeypatch):
    root = _real_data_or_skip("omniglot/images_background_small1.zip")
    monkeypatch.setitem(data._FULL_SET_CHARS, "evaluation", 3)
    payload = _lake_style_zip(root, "images_evaluation", 2)  # one character short
    monkeypatch.setattr(data, "_urlopen", lambda url, timeout: io.BytesIO(payload))
    monkeypatch.delenv("CAB420_OFFLINE")
    with pytest.raises(data.CorruptDataError, match="2 characters, expected 3"):
        data.load_omniglot("evaluation")
    assert _files_under(isolated / "cache") == []


def test_background_falls_back_to_the_small_sets_and_says_why(monkeypatch):
    def fake_load(subset, size=None):
        if subset == "background":
            raise data.DataNotFoundError("images_background.npz is in none of the searched folders\nmore lines")
        n = {"background_small1": 3, "background_small2": 2}[subset]
        return data.OmniglotSet(np.full((n, 20, 4, 4), n, np.float32), np.arange(n), np.array(["a"] * n), subset)

    monkeypatch.setattr(data, "load_omniglot", fake_load)
    merged, source = data.load_omniglot_background(size=4)
    assert merged.images.shape == (5, 20, 4, 4) and list(merged.labels) == [0, 1, 2, 3, 4]
    assert merged.images[:3].min() == 3 and merged.images[3:].max() == 2
    assert "small background sets" in source and "images_background.npz" in source and "more lines" not in source
