"""Next-token sampling: greedy, temperature, top-p nucleus, seeding and argument checks. References are written
here in plain Python (math.exp, sorted lists), not taken from gptoss_np."""

import math

import numpy as np
import pytest

import gptoss_np
from gptoss_np import InputError, sample
from gptoss_np.sampling import greedy, top_p_filter


def py_softmax(logits, temperature=1.0):
    """softmax(logits / T) with python floats."""
    z = [float(v) / temperature for v in logits]
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return np.array([v / s for v in e])


def py_nucleus(probs, top_p):
    """The smallest set of most likely ids whose mass reaches top_p: walk the ids from most to least likely."""
    ranked = sorted(range(len(probs)), key=lambda i: (-probs[i], i))
    kept, mass = [], 0.0
    for i in ranked:
        kept.append(i)
        mass += probs[i]
        if mass >= top_p:
            break
    return set(kept)


def draw_counts(logits, n, seed, **kw):
    g = np.random.default_rng(seed)
    counts = np.zeros(len(logits), dtype=np.int64)
    for _ in range(n):
        counts[sample(logits, rng=g, **kw)] += 1
    return counts


def chi_square(counts, probs):
    """Pearson's statistic over the ids with non-zero expected count."""
    n = counts.sum()
    exp = n * probs
    nz = exp > 0
    return float(((counts[nz] - exp[nz]) ** 2 / exp[nz]).sum()), int(nz.sum()) - 1


# upper 1e-4 quantiles of chi-square with df degrees of freedom (tables): a seeded test fails only on a real bias
CHI2_1E4 = {2: 18.42, 3: 21.11, 4: 23.51, 7: 29.88, 9: 33.72}


# ---- greedy -------------------------------------------------------------------------------------------------------

def test_greedy_is_argmax_with_lowest_id_on_ties():
    r = np.random.default_rng(0)
    for _ in range(50):
        logits = r.standard_normal(37)
        best = max(range(37), key=lambda i: (logits[i], -i))
        assert greedy(logits) == best
    assert greedy(np.array([1.0, 3.0, 2.0, 3.0])) == 1


def test_temperature_zero_is_greedy_whatever_the_rng():
    r = np.random.default_rng(1)
    for seed in range(20):
        logits = r.standard_normal(100)
        tok = sample(logits, temperature=0.0, rng=seed)
        assert tok == int(np.argmax(logits)) and isinstance(tok, int)
        assert sample(logits, temperature=0, top_p=0.1, rng=seed + 100) == tok


# ---- seeding ------------------------------------------------------------------------------------------------------

def test_same_seed_gives_same_draws_and_different_seeds_differ():
    logits = np.zeros(50)  # uniform: a seed that were ignored would still give varied draws

    def stream(seed):
        g = np.random.default_rng(seed)
        return [sample(logits, rng=g) for _ in range(200)]

    a, b, c = stream(123), stream(123), stream(124)
    assert a == b
    assert sum(x != y for x, y in zip(a, c)) > 150  # two independent uniform streams agree ~4 times in 200
    assert len(set(a)) > 30
    # an int seed is a fresh generator each call: same seed, same token; many seeds, many tokens
    assert all(sample(logits, rng=s) == sample(logits, rng=s) for s in range(50))
    assert len({sample(logits, rng=s) for s in range(50)}) > 20


# ---- temperature ----------------------------------------------------------------------------------------------------

def test_sample_frequencies_match_softmax_at_temperature_1():
    logits = np.array([2.0, 1.0, 0.5, 0.0, -0.5, -1.0, 1.5, 0.2, -2.0, 0.8])
    probs = py_softmax(logits)
    n = 20000
    counts = draw_counts(logits, n, seed=2024)
    stat, df = chi_square(counts, probs)
    assert df == 9 and stat < CHI2_1E4[df], (stat, counts, n * probs)
    se = np.sqrt(n * probs * (1 - probs))
    assert np.all(np.abs(counts - n * probs) < 4.5 * se)
    # the same counts are far from a distribution that ignores the logits (uniform)
    assert chi_square(counts, np.full(10, 0.1))[0] > 1000


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_temperature_scales_logits_before_softmax(temperature):
    logits = np.array([1.0, 0.0, -0.5, 0.3, -1.0])
    probs = py_softmax(logits, temperature)
    counts = draw_counts(logits, 6000, seed=7, temperature=temperature)
    stat, df = chi_square(counts, probs)
    assert stat < CHI2_1E4[df], (stat, counts, 6000 * probs)
    assert chi_square(counts, py_softmax(logits))[0] > 3 * CHI2_1E4[df]  # not the T = 1 distribution


def test_lower_temperature_sharpens_the_distribution():
    logits = np.array([1.0, 0.6, 0.2, -0.2])
    share = {T: draw_counts(logits, 1500, seed=11, temperature=T)[0] / 1500 for T in (2.0, 1.0, 0.5, 0.1)}
    assert share[2.0] < share[1.0] < share[0.5] < share[0.1]
    assert share[0.1] > 0.95


# ---- top-p ----------------------------------------------------------------------------------------------------------

# exact binary fractions, shuffled, so the cumulative sums hit the boundaries exactly
PROBS = np.array([0.0625, 0.5, 0.125, 0.25, 0.0625])


@pytest.mark.parametrize("top_p,nucleus", [
    (0.3, {1}), (0.5, {1}), (0.51, {1, 3}), (0.75, {1, 3}), (0.76, {1, 3, 2}), (0.875, {1, 3, 2}),
    (0.9, {1, 3, 2, 0}), (1.0, {0, 1, 2, 3, 4}),
])
def test_top_p_keeps_smallest_nucleus_whose_mass_reaches_p(top_p, nucleus):
    out = top_p_filter(PROBS.copy(), top_p)
    assert set(np.flatnonzero(out)) == nucleus == py_nucleus(PROBS, top_p)
    mass = sum(PROBS[i] for i in nucleus)
    np.testing.assert_allclose(out[sorted(nucleus)], PROBS[sorted(nucleus)] / mass, rtol=1e-15)
    assert out.sum() == pytest.approx(1.0, rel=1e-15)


def test_top_p_filter_agrees_with_a_sorted_walk_on_random_distributions():
    r = np.random.default_rng(3)
    for _ in range(200):
        probs = py_softmax(2.0 * r.standard_normal(int(r.integers(2, 40))))
        top_p = float(r.uniform(0.05, 0.999))
        assert set(np.flatnonzero(top_p_filter(probs, top_p))) == py_nucleus(probs, top_p)


def test_top_p_never_samples_outside_the_nucleus():
    logits = np.log(PROBS)
    counts = draw_counts(logits, 4000, seed=5, top_p=0.8)  # nucleus {1, 3, 2}, mass 0.875
    assert counts[0] == 0 and counts[4] == 0
    kept = np.array([0.0, 0.5, 0.125, 0.25, 0.0]) / 0.875
    stat, df = chi_square(counts, kept)
    assert df == 2 and stat < CHI2_1E4[df], counts


def test_top_p_nucleus_is_taken_after_temperature():
    logits = np.log(PROBS)
    # at T = 1 and top_p = 0.7 the nucleus is {1, 3}; at T = 2 the flatter distribution needs {1, 3, 2}
    assert py_nucleus(py_softmax(logits, 1.0), 0.7) == {1, 3}
    assert py_nucleus(py_softmax(logits, 2.0), 0.7) == {1, 3, 2}
    counts = draw_counts(logits, 3000, seed=9, temperature=2.0, top_p=0.7)
    assert counts[0] == 0 and counts[4] == 0 and counts[2] > 0
    p = py_softmax(logits, 2.0)
    p[[0, 4]] = 0.0
    stat, df = chi_square(counts, p / p.sum())
    assert stat < CHI2_1E4[df], counts


# ---- argument checks ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [-1.0, -1e-9, float("nan"), float("inf"), -float("inf")])
def test_bad_temperature_raises_input_error_naming_temperature(temperature):
    with pytest.raises(InputError, match="temperature"):
        sample(np.zeros(4), temperature=temperature, rng=0)


@pytest.mark.parametrize("top_p", [0.0, -0.5, 1.0000001, 2.0, float("nan"), float("inf")])
def test_bad_top_p_raises_input_error_naming_top_p(top_p):
    with pytest.raises(InputError, match="top_p"):
        sample(np.zeros(4), top_p=top_p, rng=0)


def test_input_error_is_the_package_error_type():
    assert issubclass(InputError, gptoss_np.GptOssError) and issubclass(InputError, ValueError)


def test_tiny_temperature_is_greedy_not_nan():
    from gptoss_np.sampling import sample as _sample
    assert _sample(np.array([1.0, 2.0, 0.5]), temperature=1e-309, rng=0) == 1


@pytest.mark.parametrize("bad", [[np.nan, 1.0], [-np.inf, -np.inf]])
def test_nan_or_all_masked_logits_name_the_argument(bad):
    from gptoss_np import InputError
    from gptoss_np.sampling import sample as _sample
    with pytest.raises(InputError, match="logits"):
        _sample(np.array(bad), temperature=1.0, rng=0)
