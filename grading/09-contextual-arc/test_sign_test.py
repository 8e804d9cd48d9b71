"""Hidden tests of Exercise 9.2, `sign_test(wins, losses) -> p`."""
import math


def p_value(student, wins, losses):
    value = student.sign_test(wins, losses)
    return float(value)


def exact(wins, losses):
    n = wins + losses
    return min(1.0, 2 * sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2 ** n)


def test_hand_values(student):
    """5 against 0: 2/32; 4 against 1: 2 (1 + 5) / 32"""
    assert abs(p_value(student, 5, 0) - 2 / 32) < 1e-12
    assert abs(p_value(student, 1, 4) - 12 / 32) < 1e-12


def test_many_splits(student):
    """agrees with the exact binomial test on splits from 1 to 1,500 disagreements"""
    for wins, losses in ((1, 0), (0, 7), (13, 8), (30, 55), (120, 80), (700, 800)):
        got, want = p_value(student, wins, losses), exact(wins, losses)
        assert abs(got - want) < 1e-9, f"{wins} against {losses}: expected p = {want:.6g}, got {got:.6g}"


def test_never_above_one(student):
    """even splits give 1, not more"""
    for wins, losses in ((0, 0), (4, 4), (9, 8)):
        assert abs(p_value(student, wins, losses) - 1.0) < 1e-12, f"{wins} against {losses} should give p = 1"
