"""Hidden tests of Exercise 5.2, `ratio_loss_gradient(z, form="mse") -> dL/dz` per triplet."""
import numpy as np


def grad(student, z, *form):
    with np.errstate(all="ignore"):
        out = np.asarray(student.ratio_loss_gradient(np.asarray(z, dtype=float), *form), dtype=float)
    assert out.shape == np.shape(z), f"it should return one gradient per entry of z {np.shape(z)}, got {out.shape}"
    return out


def sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * np.asarray(z, float)))


def finite_difference(loss, z, h=1e-5):
    return (loss(z + h) - loss(z - h)) / (2 * h)


def test_hand_values(student):
    """hand-worked slopes: at z = ln 2 the MSE form's slope is largest, 8/27"""
    ln2 = float(np.log(2.0))
    got = grad(student, [ln2], "mse")[0]
    assert abs(got - 8 / 27) < 1e-6, f"at z = ln 2, sigma = 2/3: slope 2 (2/3)^2 (1/3) = 8/27 = 0.2963, yours {got:.5f}"
    got = grad(student, [-ln2], "log")[0]
    assert abs(got - 1 / 3) < 1e-6, f"the log form's slope at z = -ln 2 is sigma(-ln 2) = 1/3, yours {got:.5f}"


def test_default_form_is_mse(student):
    """without a form, the MSE form"""
    z = np.array([-1.0, 0.5, 2.0])
    assert np.allclose(grad(student, z), grad(student, z, "mse")), "without `form` it should give the MSE form's slope"


def test_matches_finite_differences(student):
    """agrees with finite differences of sigma(z)^2 and softplus(z) on random z"""
    z = np.random.default_rng(101).uniform(-10, 10, 200)
    mse = finite_difference(lambda x: sigmoid(x) ** 2, z)
    log = finite_difference(lambda x: np.logaddexp(0, x), z)
    assert np.allclose(grad(student, z, \
        "mse"), mse, atol=1e-6), "the MSE form's slope disagrees with finite differences"
    assert np.allclose(grad(student, z, \
        "log"), log, atol=1e-6), "the log form's slope disagrees with finite differences"


def test_peak_and_vanishing(student):
    """the MSE form's slope peaks near z = 0.69 and vanishes on both sides"""
    z = np.linspace(-30, 30, 60001)
    g = grad(student, z, "mse")
    assert abs(z[np.argmax(g)] - np.log(2)) < 2e-3, \
        f"the MSE form's slope should peak at z = ln 2, yours at {z[np.argmax(g)]:.3f}"
    assert g[0] < 1e-12 and g[-1] < 1e-11, "the MSE form's slope should vanish far from 0 on both sides"
    log = grad(student, z, "log")
    assert np.all(np.diff(log) >= 0) and log[-1] > 1 - 1e-12, "the log form's slope should rise steadily to 1"


def test_extremes_and_shapes(student):
    """finite for z up to +-10,000, for any shape of z"""
    z = np.array([[-1e4, -700.0], [700.0, 1e4]])
    for form, expected in (("mse", [[0, 0], [0, 0]]), ("log", [[0, 0], [1, 1]])):
        got = grad(student, z, form)
        assert np.all(np.isfinite(got)), f"{form} form: NaN or infinity for z = +-700 or +-10,000"
        assert np.allclose(got, expected, atol=1e-12), \
            f"{form} form: at z = +-700 and +-10,000 expected {expected}, got {got.tolist()}"
    assert grad(student, np.zeros((2, 3, 4)), "log").shape == (2, 3, 4)

