"""FID and KID from features (NumPy/SciPy, float64): `feature_statistics`, `frechet_distance`,
`kernel_inception_distance`."""
import warnings

import numpy as np
import scipy.linalg

from whitebox.base.errors import UsageError

SQRTM_OFFSET = 1e-6
IMAGINARY_TOLERANCE = 1e-3


class MetricsError(UsageError):
    """A network file, cache or image set that cannot be used; str() says why."""


def feature_statistics(features):
    """(mean, covariance) of an N x D feature array, both float64; N >= 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise MetricsError(f"need at least 2 feature vectors, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrtm(matrix):
    """scipy.linalg.sqrtm without its LinAlgWarning for a singular matrix: the caller checks
    the root, and `compare` reports when few images make the covariances singular."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        return scipy.linalg.sqrtm(matrix)


def _sqrtm_of_product(sigma1, sigma2, offset=SQRTM_OFFSET):
    """(real square root of sigma1 @ sigma2, the diagonal offset that was needed).

    A root with infinities or NaNs (a singular product: fewer images than dimensions) is taken
    again with `offset` added to both diagonals. An imaginary diagonal part above
    IMAGINARY_TOLERANCE is an error; a smaller one is rounding noise, dropped.
    """
    root, used = _sqrtm(sigma1 @ sigma2), 0.0
    if not np.isfinite(root).all():
        shift = np.eye(sigma1.shape[0]) * offset
        root, used = _sqrtm((sigma1 + shift) @ (sigma2 + shift)), offset
        if not np.isfinite(root).all():
            raise MetricsError("the covariance product has no finite square root even after "
                               f"adding {offset} to the diagonals")
    if np.iscomplexobj(root):
        worst = np.abs(np.diagonal(root).imag).max()
        if worst > IMAGINARY_TOLERANCE:
            raise MetricsError(f"square root of the covariance product has an imaginary part "
                               f"of {worst:.3g} on its diagonal (numerically unstable)")
        root = root.real
    return root, used


def frechet_distance(mu1, sigma1, mu2, sigma2, offset=SQRTM_OFFSET):
    """|mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 sigma2)) in float64, a float:
    the Fréchet distance between two Gaussians (FID for Inception features)."""
    mu1, mu2 = (np.atleast_1d(np.asarray(m, np.float64)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(s, np.float64)) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or \
            sigma1.shape != (mu1.size, mu1.size):
        raise MetricsError(f"statistics do not match: means {mu1.shape} / {mu2.shape}, "
                           f"covariances {sigma1.shape} / {sigma2.shape}")
    root, _ = _sqrtm_of_product(sigma1, sigma2, offset)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root))


def polynomial_kernel(x, y):
    """KID's kernel k(x, y) = (x.y / d + 1)^3 for every row pair of x (m x d) and y (n x d)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y):
    """Unbiased squared MMD between samples x and y of m rows each: the within-set sums leave
    out i == j, so it is zero in expectation for one distribution, and can be negative."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kernel_inception_distance(features1, features2, subsets=100, subset_size=1000, seed=0):
    """KID: `mmd2_unbiased` averaged over `subsets` rounds, each drawing min(subset_size, n1,
    n2) rows per set without replacement (repeatable by `seed`). Returns a dict of mean, std
    (over the rounds), subsets and subset_size."""
    x, y = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise MetricsError("KID needs at least 2 images on each side")
    rng = np.random.default_rng(seed)
    values = np.array([mmd2_unbiased(x[rng.choice(len(x), size, replace=False)],
                                     y[rng.choice(len(y), size, replace=False)])
                       for _ in range(subsets)])
    return dict(mean=float(values.mean()), std=float(values.std()), subsets=int(subsets),
                subset_size=int(size))
