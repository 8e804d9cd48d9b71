"""Hidden tests of Exercise 6.1, `patch_pairs(images, patch_size, rng) -> (first, second)`."""

import numpy as np


def coded(n, height, width, channels=1):
    """Pixel values that say where they come from: image, row, column and channel."""
    i, r, c, k = np.meshgrid(np.arange(n), np.arange(height), np.arange(width), np.arange(channels), indexing="ij")
    return (i * 1_000_000 + r * 10_000 + c * 100 + k).astype(np.float64)


def cut(student, images, patch_size, seed=0):
    result = student.patch_pairs(images, patch_size, np.random.default_rng(seed))
    assert isinstance(result, (tuple, list)) and len(result) == 2, "it should return two arrays: (first, second)"
    first, second = (np.asarray(x) for x in result)
    expected = (len(images), patch_size, patch_size, images.shape[-1])
    assert first.shape == expected and second.shape == expected, \
        f"both arrays should have shape {expected}, got {first.shape} and {second.shape}"
    return first, second


def corners(images, patches, patch_size):
    found = []
    for i, patch in enumerate(patches):
        code = int(patch[0, 0, 0])
        image, row, col = code // 1_000_000, code % 1_000_000 // 10_000, code % 10_000 // 100
        assert image == i, f"patch {i} comes from image {image}"
        assert row + patch_size <= images.shape[1] and col + patch_size <= images.shape[2], \
            f"patch {i} at row {row}, column {col} leaves the image"
        assert np.array_equal(patch, images[i, row:row + patch_size, col:col + patch_size]), \
            f"patch {i} is not the square of its image at row {row}, column {col}"
        found.append((row, col))
    return np.array(found)


def test_squares_of_their_own_image(student):
    """each patch is a square of its own image, every channel, for non-square images"""
    images = coded(300, 11, 17, 3)
    first, second = cut(student, images, 6)
    corners(images, first, 6)
    corners(images, second, 6)


def test_whole_range_uniform(student):
    """corners cover every position, about equally often, in rows and columns"""
    images = coded(6000, 8, 12)
    first, second = cut(student, images, 5)      # rows 0..3, columns 0..7
    for name, patches in (("first", first), ("second", second)):
        at = corners(images, patches, 5)
        rows, cols = np.bincount(at[:, 0], minlength=4), np.bincount(at[:, 1], minlength=8)
        assert len(rows) == 4 and len(cols) == 8, f"`{name}` patches start outside rows 0..3 or columns 0..7"
        assert rows.min() > 0.8 * 6000 / 4 and cols.min() > 0.8 * 6000 / 8, \
            f"`{name}` corners are not spread evenly: rows {rows.tolist()}, columns {cols.tolist()}"


def test_independent_places(student):
    """the two patches of an image are placed independently of each other"""
    images = coded(3000, 10, 10)
    first, second = cut(student, images, 4)      # 49 places
    a, b = corners(images, first, 4), corners(images, second, 4)
    same = np.mean(np.all(a == b, axis=1))
    assert same < 0.06, f"the two patches share their place {same:.1%} of the time (independently: about 2%)"
    assert abs(np.corrcoef(a[:, 0], b[:, 0])[0, 1]) < 0.1, "the two patches' rows are correlated"


def test_full_size_and_seed(student):
    """a patch as large as the image is the image; the same seed gives the same patches"""
    images = coded(20, 7, 7, 2)
    first, second = cut(student, images, 7)
    assert np.array_equal(first, images) and np.array_equal(second, images), \
        "7 x 7 patches of 7 x 7 images are the images"
    small = coded(40, 9, 9)
    one, two, other = cut(student, small, 3, 9), cut(student, small, 3, 9), cut(student, small, 3, 10)
    assert all(np.array_equal(x, y) for x, y in zip(one, two)), "generators seeded alike gave different patches"
    assert not all(np.array_equal(x, y) for x, y in zip(one, other)), "different seeds gave the same patches"


def test_keeps_dtype(student):
    """uint8 images give uint8 patches (the values are copied, not changed)"""
    images = np.random.default_rng(111).integers(0, 256, (10, 28, 28, 1)).astype(np.uint8)
    first, second = cut(student, images, 14)
    assert first.dtype == np.uint8 and second.dtype == np.uint8, f"got {first.dtype} and {second.dtype}"


def test_vectorised(student):
    """100,000 images within 4 s, or 10 times the course's own time on a slow machine"""
    from cab420utils import contrasting
    from cab420utils.grading import speed

    images = np.zeros((100_000, 28, 28, 1), np.float32)
    timing = speed.time_against_course(lambda x, p: cut(student, x, p),
                                       lambda x, p: contrasting.sample_patch_pairs(x, p, np.random.default_rng(0),
                                                                                   flip=False),
                                       lambda: (images, 12), budget=4.0)
    assert not timing.too_slow, timing.describe("100,000 images")
