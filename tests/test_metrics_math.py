"""FID and KID arithmetic against closed forms and independent computations (no TensorFlow)."""
import numpy as np
import pytest
import scipy.linalg

from whitebox.evaluate import distances


def random_rotation(d, rng):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def trace_sqrt_product_by_eigenvalues(s1, s2):
    """tr sqrtm(s1 s2) computed differently: s1 s2 is similar to the PSD matrix
    s1^1/2 s2 s1^1/2, so its root's trace is the sum of the roots of the eigenvalues."""
    w, v = np.linalg.eigh(s1)
    half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    eig = np.linalg.eigvalsh(half @ s2 @ half)
    return np.sqrt(np.clip(eig, 0, None)).sum()


def independent_fid(x, y):
    mx, my = x.mean(0), y.mean(0)
    sx, sy = np.cov(x.T), np.cov(y.T)
    return ((mx - my) ** 2).sum() + np.trace(sx) + np.trace(sy) \
        - 2 * trace_sqrt_product_by_eigenvalues(sx, sy)


def test_statistics_are_float64_mean_and_unbiased_covariance():
    x = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    mean, cov = distances.feature_statistics(x)
    assert mean.dtype == cov.dtype == np.float64
    centred = x.astype(np.float64) - x.mean(0, dtype=np.float64)
    np.testing.assert_allclose(cov, centred.T @ centred / 49, rtol=1e-12)


def test_identical_sets_give_zero():
    x = np.random.default_rng(1).standard_normal((300, 32))
    mean, cov = distances.feature_statistics(x)
    assert abs(distances.frechet_distance(mean, cov, mean, cov)) < 1e-6


def test_closed_form_for_gaussians_with_rotated_covariance():
    rng = np.random.default_rng(2)
    d = 6
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    c = 2.5
    eig = rng.uniform(0.5, 3.0, d)
    q = random_rotation(d, rng)
    s1, s2 = c * np.eye(d), q @ np.diag(eig) @ q.T
    # s1 = cI commutes with everything: tr sqrt(s1 s2) = sqrt(c) * sum sqrt(eig(s2))
    expected = ((mu1 - mu2) ** 2).sum() + c * d + eig.sum() - 2 * np.sqrt(c) * np.sqrt(eig).sum()
    assert distances.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)
    # and in 1-D: (m1 - m2)^2 + (sd1 - sd2)^2
    assert distances.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)


def test_sampled_gaussians_approach_the_closed_form():
    rng = np.random.default_rng(3)
    d = 3
    s1, s2 = np.diag([1.0, 2.0, 0.5]), np.diag([2.0, 1.0, 0.5])
    x = rng.multivariate_normal(np.zeros(d), s1, 20000)
    y = rng.multivariate_normal(np.ones(d), s2, 20000)
    expected = 3 + sum((np.sqrt(a) - np.sqrt(b)) ** 2 for a, b in [(1, 2), (2, 1), (.5, .5)])
    m1, c1 = distances.feature_statistics(x)
    m2, c2 = distances.feature_statistics(y)
    assert distances.frechet_distance(m1, c1, m2, c2) == pytest.approx(expected, abs=0.06)


def test_agrees_with_an_independent_computation_and_is_symmetric():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((400, 20))
    y = rng.standard_normal((500, 20)) @ rng.standard_normal((20, 20)) * 0.5 + 0.3
    m1, c1 = distances.feature_statistics(x)
    m2, c2 = distances.feature_statistics(y)
    ours = distances.frechet_distance(m1, c1, m2, c2)
    assert ours == pytest.approx(independent_fid(x, y), rel=1e-8)
    assert distances.frechet_distance(m2, c2, m1, c1) == pytest.approx(ours, rel=1e-8)
    assert ours > 1.0


def test_singular_covariance_gives_a_finite_value():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((10, 64)), rng.standard_normal((12, 64)) + 0.1
    m1, c1 = distances.feature_statistics(x)
    m2, c2 = distances.feature_statistics(y)
    assert np.linalg.matrix_rank(c1) < 64
    value = distances.frechet_distance(m1, c1, m2, c2)
    assert np.isfinite(value) and value > 0
    assert value == pytest.approx(independent_fid(x, y), rel=1e-6)



def test_a_singular_product_gives_no_scipy_warning(recwarn):
    """SciPy warns (two lines on stderr) that the root of a singular matrix may be inaccurate;
    the report's own warning about singular covariances says it instead."""
    s = np.diag([1.0, 0.0])
    assert distances.frechet_distance(np.zeros(2), s, np.ones(2), s) == pytest.approx(2.0)
    assert [str(w.message) for w in recwarn] == []

def test_offset_is_used_when_the_root_is_not_finite(monkeypatch):
    calls = []
    real = scipy.linalg.sqrtm

    def flaky(a):
        calls.append(a.copy())
        return np.full_like(a, np.nan) if len(calls) == 1 else real(a)

    monkeypatch.setattr(distances.scipy.linalg, "sqrtm", flaky)
    s = np.diag([1.0, 0.0])
    root, offset = distances._sqrtm_of_product(s, s)
    assert offset == distances.SQRTM_OFFSET and len(calls) == 2
    np.testing.assert_allclose(calls[1], (s + 1e-6 * np.eye(2)) @ (s + 1e-6 * np.eye(2)))
    assert np.isfinite(root).all() and not np.iscomplexobj(root)


def test_large_imaginary_part_is_an_error(monkeypatch):
    monkeypatch.setattr(distances.scipy.linalg, "sqrtm",
                        lambda a: np.eye(len(a)) * (1 + 0.5j))
    with pytest.raises(distances.MetricsError, match="imaginary"):
        distances.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2))
    monkeypatch.setattr(distances.scipy.linalg, "sqrtm",
                        lambda a: np.eye(len(a)) * (1 + 1e-9j))
    assert distances.frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2)) \
        == pytest.approx(2.0)  # |mu1 - mu2|^2 + 2 + 2 - 2 * 2: the noise is dropped


def direct_mmd2(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b/d + 1)^3, pair by pair."""
    m, d = x.shape
    k = lambda a, b: (np.dot(a, b) / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_a_direct_pairwise_computation():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((15, 5)), rng.standard_normal((15, 5)) + 0.7
    assert distances.mmd2_unbiased(x, y) == pytest.approx(direct_mmd2(x, y), rel=1e-10)
    # with subset_size >= n every round uses all rows: std 0, mean = the direct value
    kid = distances.kernel_inception_distance(x, y, subsets=3, subset_size=100)
    assert kid["subset_size"] == 15 and kid["std"] < 1e-12
    assert kid["mean"] == pytest.approx(direct_mmd2(x, y), rel=1e-10)


def test_kid_mean_over_subsets_and_seed():
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((60, 4)), rng.standard_normal((80, 4)) + 0.5
    kid = distances.kernel_inception_distance(x, y, subsets=5, subset_size=20, seed=3)
    again = np.random.default_rng(3)
    values = [direct_mmd2(x[again.choice(60, 20, replace=False)],
                          y[again.choice(80, 20, replace=False)]) for _ in range(5)]
    assert kid["mean"] == pytest.approx(np.mean(values), rel=1e-10)
    assert kid["std"] == pytest.approx(np.std(values), rel=1e-8)
    assert kid["mean"] > 0


def test_kid_is_unbiased_where_the_plain_estimate_is_not():
    rng = np.random.default_rng(8)
    unbiased, plain = [], []
    for _ in range(300):
        x, y = rng.standard_normal((10, 3)), rng.standard_normal((10, 3))
        unbiased.append(distances.mmd2_unbiased(x, y))
        k = distances.polynomial_kernel
        plain.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    unbiased, plain = np.array(unbiased), np.array(plain)
    stderr = unbiased.std() / np.sqrt(len(unbiased))
    assert abs(unbiased.mean()) < 3 * stderr          # expectation zero
    assert plain.mean() > 10 * stderr                 # the diagonal terms bias it upwards
    assert (unbiased < 0).any()                       # an unbiased estimate can go negative


def test_mismatched_statistics_are_refused():
    with pytest.raises(distances.MetricsError, match="do not match"):
        distances.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
