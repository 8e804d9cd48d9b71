"""Exercises, instant feedback and auto-grading.

* :mod:`.notebooks` — the mark-up convention of ``solutions/`` (cell tags
  ``solution``, ``check``, ``written``, ``solution-only``; ``### BEGIN/END
  SOLUTION`` markers) and how a student copy is made from it.
* :mod:`.checks` — the instant-feedback checks a notebook's check cells call,
  and :func:`with_fallback`, which lets a student copy's later cells use the
  course's version of a function not written yet.
* :mod:`.grader` — ``cab420-grade``: marks a folder of submissions against an
  assignment's hidden tests; each submission runs in its own sandboxed
  process (:mod:`.sandbox`).

See ``docs/instructors.md``.
"""
from .checks import (  # noqa: F401
    CheckReport,
    assert_checks_passed,
    check_balanced_pairs,
    check_contrastive_loss,
    check_equal_error_rate,
    check_l2_normalize,
    check_patch_pairs,
    check_ratio_loss_gradient,
    check_recall_at_k,
    check_roc_auc_from_distances,
    check_semi_hard_negatives,
    check_softmax_ratio_loss,
    check_spatial_contrasting_loss,
    check_triplet_loss,
    is_not_written,
    with_fallback,
)

__all__ = ["CheckReport", "assert_checks_passed", "check_balanced_pairs", "check_contrastive_loss",
           "check_equal_error_rate", "check_l2_normalize", "check_patch_pairs", "check_ratio_loss_gradient",
           "check_recall_at_k", "check_roc_auc_from_distances", "check_semi_hard_negatives",
           "check_softmax_ratio_loss", "check_spatial_contrasting_loss", "check_triplet_loss", "is_not_written",
           "with_fallback"]

from .checks import check_entropy_of, check_reference_distribution  # noqa: F401, E402

__all__ += ["check_entropy_of", "check_reference_distribution"]

from .checks import check_cauchy_kernels, check_decide, check_glimpse_from, check_sign_test  # noqa: F401, E402

__all__ += ["check_cauchy_kernels", "check_decide", "check_glimpse_from", "check_sign_test"]
