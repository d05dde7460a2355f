"""Per-class loss weights from label counts (pure numpy: the UI and the CLI import it too).

Order of operations, fixed and tested:

1. **raw scheme** on the classes that have labels;
2. **zero-count classes**: ``"max"`` gives them the largest raw weight (a class never seen is at least as rare as
   the rarest one seen) before normalising; ``"one"`` gives them exactly 1.0 in the final scale, i.e. neutral, after
   normalising the classes that have labels (so ``mean`` still averages 1 and ``min`` still has minimum 1);
   ``"error"`` raises;
3. **normalize** (``mean``: weights average 1, keeping the loss scale, as ultralytics does for ``cls_pw``;
   ``min``: the most frequent class gets 1, as in the guide's ``max(counts) / counts``; ``none``);
4. **cap**: clip the final weights to ``cap``. Not renormalised afterwards: renormalising would push the capped
   weights back above the cap, and the cap is meant as a hard limit on any class's multiplier. With ``mean`` the
   capped weights then average a little below 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from trainers.errors import WorkbenchError

__all__ = ["NORMALIZATIONS", "SCHEMES", "SCHEME_LABELS", "ZERO_COUNT", "all_schemes", "compute_weights"]

SCHEMES = ("inverse_frequency", "power", "effective_number", "sqrt_inverse")
SCHEME_LABELS = {
    "inverse_frequency": "inverse frequency (max/n)",
    "power": "power (1/n^p)",
    "effective_number": "effective number (beta)",
    "sqrt_inverse": "sqrt inverse (1/sqrt n)",
}
NORMALIZATIONS = ("mean", "min", "none")  # mean: weights average 1 (keeps the loss scale, like ultralytics cls_pw)
ZERO_COUNT = ("max", "one", "error")  # what a class with 0 labels gets: largest finite weight, 1.0, or raise


def compute_weights(
    counts: Sequence[int],
    scheme: str,
    *,
    power: float,
    beta: float,
    cap: float | None,
    normalize: str,
    zero_count: str,
) -> list[float]:
    """Compute one loss weight per class from its label count.

    Schemes, for a class with ``n`` labels:

    - ``inverse_frequency``: ``max(counts) / n`` (the guide's formula);
    - ``power``: ``(1 / n) ** power`` (what ultralytics 8.4 ``cls_pw`` does; ``power=1`` is plain inverse
      frequency, ``0`` all ones);
    - ``effective_number``: ``(1 - beta) / (1 - beta ** n)`` (Cui et al., CVPR 2019, "Class-Balanced Loss Based on
      Effective Number of Samples"); ``beta`` near 1 approaches inverse frequency, near 0 all ones;
    - ``sqrt_inverse``: ``1 / sqrt(n)``.

    See the module docstring for the order of zero-count handling, normalisation and cap.

    Args:
        counts: Labels (boxes) per class, in class-id order.
        scheme: One of :data:`SCHEMES`.
        power: Exponent of the ``power`` scheme, >= 0.
        beta: Parameter of the ``effective_number`` scheme, in (0, 1).
        cap: Upper limit of the final weights, > 0; ``None`` for no cap.
        normalize: One of :data:`NORMALIZATIONS`.
        zero_count: One of :data:`ZERO_COUNT`.

    Returns:
        One weight per class, as Python floats.

    Raises:
        WorkbenchError: One line naming the parameter (``class_weights.<name>``) and what is allowed.
    """
    _check_choice("scheme", scheme, SCHEMES)
    _check_choice("normalize", normalize, NORMALIZATIONS)
    _check_choice("zero_count", zero_count, ZERO_COUNT)
    if not _is_number(power) or power < 0:
        raise WorkbenchError(f"class_weights.power must be >= 0, got {power}")
    if not _is_number(beta) or not 0 < beta < 1:
        raise WorkbenchError(f"class_weights.beta must be in (0, 1), got {beta}")
    if cap is not None and (not _is_number(cap) or cap <= 0):
        raise WorkbenchError(f"class_weights.cap must be > 0 (or None for no cap), got {cap}")
    n = _check_counts(counts)

    present = n > 0
    if zero_count == "error" and not present.all():
        missing = ", ".join(str(i) for i in np.flatnonzero(~present)[:10])
        raise WorkbenchError(
            f"class_weights.zero_count is 'error' and class(es) {missing} have 0 labels; add labels for them or "
            "set zero_count to 'max' or 'one'"
        )
    raw = _raw_weights(n[present], scheme, power, beta)

    weights = np.empty(n.size, dtype=np.float64)
    if zero_count == "max":
        weights[present] = raw
        weights[~present] = raw.max()
        weights = _normalize(weights, normalize)
    else:  # "one" (or "error" with every class present): 1.0 is neutral in the normalised scale
        weights[present] = _normalize(raw, normalize)
        weights[~present] = 1.0
    if cap is not None:
        weights = np.minimum(weights, cap)
    return [float(w) for w in weights]


def all_schemes(counts: Sequence[int], **kwargs) -> dict[str, list[float]]:
    """Compute the weights of every scheme, for side-by-side display (``workbench counts``).

    Args:
        counts: Labels per class, in class-id order.
        **kwargs: Keyword arguments of :func:`compute_weights` other than ``scheme`` (their defaults live in the
            recipe's ``ClassWeights`` settings: ``ClassWeights().scheme_params()``).

    Returns:
        Scheme name to weights, in :data:`SCHEMES` order.
    """
    if "scheme" in kwargs:
        raise WorkbenchError("class_weights.scheme cannot be passed to all_schemes: it computes every scheme")
    return {scheme: compute_weights(counts, scheme, **kwargs) for scheme in SCHEMES}


def _raw_weights(n: np.ndarray, scheme: str, power: float, beta: float) -> np.ndarray:
    if scheme == "inverse_frequency":
        return n.max() / n
    if scheme == "power":
        return (1.0 / n) ** power
    if scheme == "effective_number":
        # -expm1(n * log(beta)) is 1 - beta**n without cancellation when beta**n is close to 1.
        return (1.0 - beta) / -np.expm1(n * math.log(beta))
    return 1.0 / np.sqrt(n)  # sqrt_inverse


def _normalize(weights: np.ndarray, normalize: str) -> np.ndarray:
    if normalize == "mean":
        return weights / weights.mean()
    if normalize == "min":
        return weights / weights.min()
    return weights


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise WorkbenchError(f"class_weights.{name} must be one of {', '.join(allowed)}; got {value!r}")


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _check_counts(counts: Sequence[int]) -> np.ndarray:
    values = list(counts)
    if not values:
        raise WorkbenchError("class_weights.counts is empty; pass one label count per class")
    for i, c in enumerate(values):
        if not _is_number(c) or float(c) != int(c):
            raise WorkbenchError(f"class_weights.counts must be whole numbers, got {c!r} for class {i}")
        if c < 0:
            raise WorkbenchError(f"class_weights.counts must be >= 0, got {c} for class {i}")
    n = np.asarray(values, dtype=np.float64)
    if not n.any():
        raise WorkbenchError(
            "class_weights.counts are all 0: no labels to weight by; check that the train split has labels"
        )
    return n
