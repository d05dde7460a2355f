"""Class-weight schemes: hand-computed values, the documented order of operations, and every input error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainers.customizations.class_weights import ClassWeights
from trainers.datasets import class_weights as weights
from trainers.datasets.class_weights import NORMALIZATIONS, SCHEMES, ZERO_COUNT
from trainers.errors import WorkbenchError

COUNTS = [5000, 200, 3000]
DEFAULTS = ClassWeights()  # the recipe's defaults: the one place they are stated


def compute_weights(counts, scheme=DEFAULTS.scheme, **kwargs):
    return weights.compute_weights(counts, scheme, **{**DEFAULTS.scheme_params(), **kwargs})


def all_schemes(counts, **kwargs):
    return weights.all_schemes(counts, **{**DEFAULTS.scheme_params(), **kwargs})


def approx(values, rel=1e-9):
    return pytest.approx(values, rel=rel, abs=1e-12)


def test_constants_are_the_documented_choices():
    assert SCHEMES == ("inverse_frequency", "power", "effective_number", "sqrt_inverse")
    assert NORMALIZATIONS == ("mean", "min", "none")
    assert ZERO_COUNT == ("max", "one", "error")


def test_inverse_frequency_min_is_the_guides_max_over_count():
    assert compute_weights(COUNTS, "inverse_frequency", normalize="min") == approx([1.0, 25.0, 5000 / 3000])
    assert compute_weights(COUNTS, "inverse_frequency", normalize="min")[2] == pytest.approx(1.6667, abs=1e-4)


def test_inverse_frequency_mean_is_the_default():
    # raw [1, 25, 5/3] sums to 83/3, so mean-normalised weights are raw * 9/83.
    expected = [9 / 83, 225 / 83, 15 / 83]
    assert compute_weights(COUNTS) == approx(expected)
    assert compute_weights(COUNTS, "inverse_frequency", normalize="none") == approx([1.0, 25.0, 5 / 3])


def test_power_scheme_values():
    assert compute_weights(COUNTS, "power", power=0.5, normalize="none") == approx(
        [1 / math.sqrt(5000), 1 / math.sqrt(200), 1 / math.sqrt(3000)]
    )
    assert compute_weights(COUNTS, "power", power=1.0, normalize="none") == approx([1 / 5000, 1 / 200, 1 / 3000])
    assert compute_weights(COUNTS, "power", power=0.0) == approx([1.0, 1.0, 1.0])
    # power=1 with min-normalisation is exactly inverse frequency
    assert compute_weights(COUNTS, "power", power=1.0, normalize="min") == approx([1.0, 25.0, 5 / 3])


def test_power_mean_matches_ultralytics_cls_pw_formula():
    # ultralytics 8.4 DetectionTrainer.compute_class_weights + set_class_weights: (1/n)**cls_pw, then / mean.
    counts = np.array([120.0, 7.0, 33.0, 900.0])
    for pw in (0.25, 0.5, 1.0):
        ref = (1.0 / counts) ** pw
        ref = ref / ref.mean()
        assert compute_weights(counts.astype(int).tolist(), "power", power=pw) == approx(ref.tolist())


def test_effective_number_formula():
    # (1 - beta) / (1 - beta**n) with beta=0.9: n=1 -> 1, n=2 -> 0.1/0.19, n=10 -> 0.1/(1 - 0.9**10)
    got = compute_weights([1, 2, 10], "effective_number", beta=0.9, normalize="none")
    assert got == approx([1.0, 0.1 / 0.19, 0.1 / 0.6513215599])
    assert got[2] == pytest.approx(0.153534, abs=1e-6)


def test_effective_number_limits():
    # beta -> 1 approaches inverse frequency; beta -> 0 approaches equal weights.
    near_one = compute_weights(COUNTS, "effective_number", beta=1 - 1e-9, normalize="min")
    assert near_one == pytest.approx([1.0, 25.0, 5 / 3], rel=1e-4)
    near_zero = compute_weights(COUNTS, "effective_number", beta=1e-6, normalize="min")
    assert near_zero == pytest.approx([1.0, 1.0, 1.0], rel=1e-5)


def test_effective_number_is_stable_for_huge_counts():
    got = compute_weights([10**9, 10**3], "effective_number", beta=0.999999, normalize="none")
    assert got[0] == pytest.approx(1e-6, rel=1e-6)  # beta**1e9 underflows to 0: weight is 1 - beta
    assert got[1] == pytest.approx(1e-6 / -math.expm1(1000 * math.log(0.999999)), rel=1e-12)


def test_sqrt_inverse():
    assert compute_weights([4, 16, 100], "sqrt_inverse", normalize="none") == approx([0.5, 0.25, 0.1])
    assert compute_weights([4, 16, 100], "sqrt_inverse", normalize="min") == approx([5.0, 2.5, 1.0])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_normalization_invariants(scheme):
    counts = np.random.default_rng(0).integers(1, 5000, size=17).tolist()
    mean_w = compute_weights(counts, scheme, normalize="mean")
    min_w = compute_weights(counts, scheme, normalize="min")
    raw_w = compute_weights(counts, scheme, normalize="none")
    assert float(np.mean(mean_w)) == pytest.approx(1.0, rel=1e-12)
    assert min(min_w) == pytest.approx(1.0, rel=1e-12)
    # normalising only rescales: ratios to the raw weights are constant
    assert np.ptp(np.array(mean_w) / np.array(raw_w)) == pytest.approx(0.0, abs=1e-9)
    # rarer classes never get smaller weights
    order = np.argsort(counts)
    assert all(np.diff(np.array(raw_w)[order]) <= 1e-15)


def test_zero_count_max_gives_the_largest_weight_before_normalising():
    # raw for [100, 25]: [1, 4]; the empty class gets 4, then everything is normalised together.
    assert compute_weights([100, 0, 25], normalize="min", zero_count="max") == approx([1.0, 4.0, 4.0])
    assert compute_weights([100, 0, 25], normalize="mean", zero_count="max") == approx([1 / 3, 4 / 3, 4 / 3])


def test_zero_count_one_is_neutral_in_the_final_scale():
    # present classes normalised on their own ([1, 4] / 2.5), then the empty class gets exactly 1.0
    got = compute_weights([100, 0, 25], normalize="mean", zero_count="one")
    assert got == approx([0.4, 1.0, 1.6])
    assert float(np.mean(got)) == pytest.approx(1.0)
    assert compute_weights([100, 0, 25], normalize="min", zero_count="one") == approx([1.0, 1.0, 4.0])
    assert compute_weights([100, 0, 25], "power", power=1.0, normalize="none", zero_count="one") == approx(
        [0.01, 1.0, 0.04]
    )


def test_zero_count_error_names_the_classes():
    with pytest.raises(WorkbenchError) as err:
        compute_weights([100, 0, 25, 0], zero_count="error")
    assert str(err.value) == (
        "class_weights.zero_count is 'error' and class(es) 1, 3 have 0 labels; add labels for them or "
        "set zero_count to 'max' or 'one'"
    )
    # with every class present, 'error' changes nothing
    assert compute_weights(COUNTS, zero_count="error") == compute_weights(COUNTS)


def test_cap_applies_to_final_weights_without_renormalising():
    assert compute_weights(COUNTS, normalize="min", cap=10) == approx([1.0, 10.0, 5 / 3])
    capped = compute_weights(COUNTS, normalize="mean", cap=2.0)
    assert capped == approx([9 / 83, 2.0, 15 / 83])
    assert float(np.mean(capped)) < 1.0  # documented: no renormalisation after the cap
    assert compute_weights(COUNTS, normalize="mean", cap=100.0) == compute_weights(COUNTS)


def test_returns_python_floats_one_per_class():
    got = compute_weights(np.array(COUNTS))
    assert len(got) == 3 and all(type(w) is float for w in got)


def test_all_schemes_passes_options_through():
    table = all_schemes(COUNTS, normalize="min")
    assert list(table) == list(SCHEMES)
    assert table["inverse_frequency"] == approx([1.0, 25.0, 5 / 3])
    assert table["sqrt_inverse"] == approx([1.0, 5.0, math.sqrt(5000 / 3000)])
    assert all_schemes(COUNTS)["power"] == compute_weights(COUNTS, "power")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"counts": []}, "class_weights.counts is empty; pass one label count per class"),
        ({"counts": [5, -3, 2]}, "class_weights.counts must be >= 0, got -3 for class 1"),
        ({"counts": [5, 2.5]}, "class_weights.counts must be whole numbers, got 2.5 for class 1"),
        ({"counts": [0, 0, 0]}, "class_weights.counts are all 0: no labels to weight by"),
        ({"beta": 1.5}, "class_weights.beta must be in (0, 1), got 1.5"),
        ({"beta": 0.0}, "class_weights.beta must be in (0, 1), got 0.0"),
        ({"beta": 1.0}, "class_weights.beta must be in (0, 1), got 1.0"),
        ({"power": -0.5}, "class_weights.power must be >= 0, got -0.5"),
        ({"cap": 0}, "class_weights.cap must be > 0 (or None for no cap), got 0"),
        ({"cap": -2.0}, "class_weights.cap must be > 0 (or None for no cap), got -2.0"),
        (
            {"scheme": "focal"},
            "class_weights.scheme must be one of inverse_frequency, power, effective_number, sqrt_inverse; got 'focal'",
        ),
        ({"normalize": "sum"}, "class_weights.normalize must be one of mean, min, none; got 'sum'"),
        ({"zero_count": "skip"}, "class_weights.zero_count must be one of max, one, error; got 'skip'"),
    ],
)
def test_errors_are_one_line_and_name_the_parameter(kwargs, message):
    kwargs = {"counts": COUNTS, **kwargs}
    with pytest.raises(WorkbenchError) as err:
        compute_weights(**kwargs)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(message)


def test_all_schemes_rejects_scheme():
    with pytest.raises(WorkbenchError, match="class_weights.scheme cannot be passed to all_schemes"):
        all_schemes(COUNTS, scheme="power")
