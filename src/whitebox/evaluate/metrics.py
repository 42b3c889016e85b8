"""FID and KID between image sets, as the cartoonization literature reports them.

Three layers, usable on their own:

- math (NumPy/SciPy, float64): `feature_statistics`, `frechet_distance`, `kernel_inception_distance`;
- feature extractors (TensorFlow): `InceptionGraph`, the 2015-12-05 frozen Inception-v3 that
  TTUR and most GAN papers use, and `KerasInception`, a second extractor whose numbers are NOT
  comparable with published ones; `load_extractor(path)` picks one by the file's name;
- image sets: `FeatureSet` holds the features (or only their statistics) of a folder or of an
  `.npz` statistics cache; `embed_folder`, `load_set`, `save_cache`, `compare`.

Protocol of `InceptionGraph` (that of TTUR's reference FID code): each image is converted from
the project's BGR to RGB, given to the graph as float32 in 0..255 at the tensor `ExpandDims:0`
(the graph's own input, placed after its JPEG decoder), the graph resizes it bilinearly to
299x299 and scales it to [-1, 1] itself, and the 2048 values of `pool_3:0` are the features.

Batching: `ExpandDims:0` is the output of an ExpandDims on one decoded image, so the graph is
built for one image of any size at a time. Images of different sizes cannot share a batch.
With batch_size > 1 every image is first resized here to the graph's size with the very op
the graph uses (`ResizeBilinear`, with the attributes read from the graph), then the stacked
images go to `ExpandDims:0` as one batch; the graph's own resize is then from 299x299 to
299x299, which for bilinear resizing is an exact copy. The features are therefore those of the
one-image path (batch_size=1 feeds each image at its own size, exactly as TTUR); the test
suite checks the two paths against each other on a stand-in graph.
"""
import hashlib
import sys
import tarfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.linalg
from tqdm import tqdm

from whitebox.base.errors import UsageError, display_path, one_line
from whitebox.base.files import atomic_file
from whitebox.base.image_io import ImageError, list_images, read_bgr
from whitebox.evaluate import DEFAULT_BATCH

INPUT_TENSOR = "ExpandDims:0"
OUTPUT_TENSOR = "pool_3:0"
GRAPH_MEMBER = "classify_image_graph_def.pb"
GRAPH_NAME = "inception-2015-12-05-pool3"
GRAPH_EXTENSIONS = (".pb", ".tgz", ".tar.gz")
KERAS_EXTENSIONS = (".h5", ".keras")

# The paper's Table (validation set: 1,978 photos, 3,011 animation images).
PAPER_VALUES = {"fid_to_cartoon": 101.31, "fid_to_photo": 28.79}

CACHE_FORMAT = 1
SQRTM_OFFSET = 1e-6
IMAGINARY_TOLERANCE = 1e-3


class MetricsError(UsageError):
    """A network file, cache or image set that cannot be used; str() says why."""


# --------------------------------------------------------------------------------------------
# Math


def feature_statistics(features):
    """(mean, covariance) of an N x D feature array, both float64; N >= 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise MetricsError(f"need at least 2 feature vectors, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrtm(matrix):
    """scipy.linalg.sqrtm without its LinAlgWarning for a singular or ill-conditioned matrix
    (two lines of SciPy's on stderr): `_sqrtm_of_product` checks the root itself, and
    `compare` says in the report when few images make the covariances singular."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        return scipy.linalg.sqrtm(matrix)


def _sqrtm_of_product(sigma1, sigma2, offset=SQRTM_OFFSET):
    """A square root of sigma1 @ sigma2 as a real matrix, and the offset that was needed.

    When the product is singular enough that SciPy's Schur-based root comes back with
    infinities or NaNs (typical for fewer images than feature dimensions), `offset` times the
    identity is added to both covariances and the root is taken again. A complex result whose
    diagonal has an imaginary part above IMAGINARY_TOLERANCE is an error; a smaller one is
    rounding noise and is dropped.
    """
    root = _sqrtm(sigma1 @ sigma2)
    used = 0.0
    if not np.isfinite(root).all():
        shift = np.eye(sigma1.shape[0]) * offset
        root = _sqrtm((sigma1 + shift) @ (sigma2 + shift))
        used = offset
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
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2):

        |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 sigma2)).

    Inputs are promoted to float64. Returns a float (FID when the statistics are Inception
    features).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
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
    """Unbiased estimate of the squared MMD between the samples x and y (same row count m).

    Within-set kernel sums leave out the diagonal (i == j), so the estimate has expectation
    zero when x and y come from one distribution; it can be negative.
    """
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kernel_inception_distance(features1, features2, subsets=100, subset_size=1000, seed=0):
    """KID: the unbiased squared MMD with the cubic polynomial kernel, averaged over subsets.

    Each of `subsets` rounds draws min(subset_size, n1, n2) rows from each set without
    replacement (a fixed `seed` makes it repeatable). Returns a dict with mean, std (over the
    rounds), subsets and subset_size.
    """
    x = np.asarray(features1, np.float64)
    y = np.asarray(features2, np.float64)
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise MetricsError("KID needs at least 2 images on each side")
    rng = np.random.default_rng(seed)
    values = np.array([mmd2_unbiased(x[rng.choice(len(x), size, replace=False)],
                                     y[rng.choice(len(y), size, replace=False)])
                       for _ in range(subsets)])
    return dict(mean=float(values.mean()), std=float(values.std()), subsets=int(subsets),
                subset_size=int(size))


# --------------------------------------------------------------------------------------------
# Feature extractors


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def _not_a_tar_reason(path):
    """Why tarfile cannot open `path`, in a few words (its own message lists every method)."""
    with open(path, "rb") as f:
        head = f.read(2)
    if not head:
        return "empty file"
    if head == b"\x1f\x8b":
        return "gzip-compressed, but not a tar archive inside"
    return "neither gzip-compressed nor a tar archive"


def _read_graph_bytes(path):
    """The bytes of the frozen GraphDef at `path`: a .pb, or the .pb inside the .tgz."""
    path = Path(path)
    if not path.exists():
        raise MetricsError(f"{path}: no such file (get inception-2015-12-05.tgz yourself; "
                           f"see docs/EVALUATION.md)")
    if path.is_dir():
        raise MetricsError(f"{path}: is a folder; give the .pb or .tgz file")
    if path.name.endswith((".tgz", ".tar.gz")):
        try:
            archive = tarfile.open(path, "r:*")
        except tarfile.ReadError:
            raise MetricsError(f"{path}: not a .tgz archive ({_not_a_tar_reason(path)})")
        except OSError as err:
            raise MetricsError(f"{path}: unreadable ({err.strerror or one_line(err)})")
        try:
            with archive:
                members = [m for m in archive.getmembers()
                           if m.isfile() and Path(m.name).name == GRAPH_MEMBER]
                if not members:
                    raise MetricsError(f"{path}: the archive holds no {GRAPH_MEMBER}")
                return archive.extractfile(members[0]).read()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            raise MetricsError(f"{path}: damaged .tgz archive ({one_line(err)})")
    try:
        return path.read_bytes()
    except OSError as err:
        raise MetricsError(f"{path}: unreadable ({err.strerror or err})")


def _rewrite_global_batchnorm(graph_def):
    """Replace every BatchNormWithGlobalNormalization node by the same arithmetic in ops that
    current TensorFlow still runs; returns how many were replaced.

    The 2015 graph normalises with that op, which TensorFlow removed in GraphDef version 9:
    imported into a TF2 function it fails at run time. Its kernel computes
    (x - mean) * (rsqrt(variance + epsilon) [* gamma]) + beta, per channel; the nodes written
    here compute exactly that, in that order, and the last one keeps the node's name so its
    consumers are untouched.
    """
    import tensorflow as tf

    names = {node.name for node in graph_def.node}
    kept, replaced = [], 0
    for node in graph_def.node:
        if node.op != "BatchNormWithGlobalNormalization":
            kept.append(node)
            continue
        replaced += 1
        x, mean, variance, beta, gamma = node.input[:5]
        dtype = node.attr["T"].type
        base = node.name + "/rewritten"
        while any(n.startswith(base + "/") for n in names):
            base += "_"

        def add(op, name, inputs, **attrs):
            new = tf.compat.v1.NodeDef(name=f"{base}/{name}" if name else node.name, op=op,
                                       input=inputs, device=node.device)
            new.attr["T"].type = dtype
            for key, value in attrs.items():
                new.attr[key].CopyFrom(value)
            kept.append(new)
            return new.name

        epsilon = tf.compat.v1.NodeDef(name=f"{base}/epsilon", op="Const")
        epsilon.attr["dtype"].type = dtype
        epsilon.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(
            node.attr["variance_epsilon"].f, tf.dtypes.as_dtype(dtype)))
        kept.append(epsilon)
        scale = add("Rsqrt", "rsqrt", [add("Add", "shifted", [variance, epsilon.name])])
        if node.attr["scale_after_normalization"].b:
            scale = add("Mul", "scale", [scale, gamma])
        centred = add("Sub", "centred", [x, mean])
        add("Add", None, [add("Mul", "scaled", [centred, scale]), beta])
    if replaced:
        del graph_def.node[:]
        graph_def.node.extend(kept)
    return replaced


class InceptionGraph:
    """Inception-v3 pool_3 features from the 2015-12-05 frozen graph, under TF2.

    path: `classify_image_graph_def.pb` or `inception-2015-12-05.tgz` (the .pb is read from
    it). `sha256` is the hash of the GraphDef bytes, the same for both containers.
    `embed(rgb_images)` takes a list of HxWx3 uint8 RGB arrays and returns N x D float32.
    """

    def __init__(self, path, batch_size=DEFAULT_BATCH):
        import tensorflow as tf

        self.path = Path(path)
        self.batch_size = max(1, int(batch_size))
        data = _read_graph_bytes(self.path)
        self.sha256 = sha256_bytes(data)
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(data)
        except Exception:  # protobuf raises its own DecodeError
            raise MetricsError(f"{self.path}: not a frozen TensorFlow GraphDef")
        self.rewritten_batchnorms = _rewrite_global_batchnorm(graph_def)
        nodes = {node.name: node for node in graph_def.node}
        for tensor in (INPUT_TENSOR, OUTPUT_TENSOR):
            if tensor.split(":")[0] not in nodes:
                raise MetricsError(f"{self.path}: the graph has no tensor {tensor}; is this "
                                   f"the 2015-12-05 Inception graph?")
        self._resize = self._find_resize(graph_def, nodes)
        if self._resize is None:
            raise MetricsError(f"{self.path}: no ResizeBilinear with a constant size after "
                               f"{INPUT_TENSOR}")
        self.image_size = self._resize["size"]

        def body(images):
            (out,) = tf.compat.v1.import_graph_def(
                graph_def, input_map={INPUT_TENSOR: images},
                return_elements=[OUTPUT_TENSOR], name="inception")
            return out

        spec = tf.TensorSpec([None, None, None, 3], tf.float32)
        try:
            self._run = tf.compat.v1.wrap_function(body, [spec])
        except (ValueError, tf.errors.OpError) as err:
            raise MetricsError(f"{self.path}: the graph cannot be loaded: {one_line(err)}")
        try:  # one blank image now, so that a graph that cannot run fails here, clearly
            probe = self._run(tf.zeros([1] + self.image_size + [3], tf.float32)).numpy()
        except tf.errors.OpError as err:
            raise MetricsError(f"{self.path}: the graph cannot run: "
                               f"{one_line(err.message or err)}")
        self.feature_dim = int(probe.size)
        self.name = GRAPH_NAME

    @staticmethod
    def _find_resize(graph_def, nodes):
        """Size and attributes of the ResizeBilinear that reads the input tensor, or None."""
        from tensorflow.python.framework import tensor_util

        source = INPUT_TENSOR.split(":")[0]
        for node in graph_def.node:
            if node.op != "ResizeBilinear" or not node.input:
                continue
            if node.input[0].split(":")[0] != source:
                continue
            size_node = nodes.get(node.input[1].split(":")[0])
            if size_node is None or size_node.op != "Const":
                return None
            size = tensor_util.MakeNdarray(size_node.attr["value"].tensor)
            return dict(size=[int(v) for v in size],
                        align_corners=bool(node.attr["align_corners"].b),
                        half_pixel_centers=bool(node.attr["half_pixel_centers"].b))
        return None

    def describe(self):
        """What every report states about the extractor."""
        return dict(name=self.name, file=str(self.path), sha256=self.sha256,
                    image_size=list(self.image_size), feature_dim=self.feature_dim,
                    input=INPUT_TENSOR, output=OUTPUT_TENSOR,
                    batchnorm_nodes_rewritten=self.rewritten_batchnorms,
                    batching=(f"images resized to {self.image_size[0]}x{self.image_size[1]} "
                              f"with the graph's ResizeBilinear, then batches of "
                              f"{self.batch_size}" if self.batch_size > 1 else
                              "one image at a time at its own size"),
                    protocol="TTUR: RGB floats 0..255 at ExpandDims:0, the graph resizes, "
                             "pool_3:0 read; comparable with published FID only when sha256 "
                             "is that of the genuine 2015-12-05 graph")

    def _preresize(self, rgb):
        """HxWx3 uint8 RGB -> 1xSxSx3 float32 through the graph's own resize op."""
        import tensorflow as tf

        image = tf.constant(rgb[None].astype(np.float32))
        return tf.raw_ops.ResizeBilinear(
            images=image, size=self.image_size, align_corners=self._resize["align_corners"],
            half_pixel_centers=self._resize["half_pixel_centers"])

    def embed_one(self, rgb):
        """One HxWx3 uint8 RGB image at its own size -> D float32 (TTUR's path)."""
        import tensorflow as tf

        out = self._run(tf.constant(rgb[None].astype(np.float32)))
        return out.numpy().reshape(-1)

    def embed(self, rgb_images):
        """A list of HxWx3 uint8 RGB images -> N x D float32 features."""
        import tensorflow as tf

        if self.batch_size == 1:
            return np.stack([self.embed_one(image) for image in rgb_images])
        chunks = []
        for start in range(0, len(rgb_images), self.batch_size):
            part = rgb_images[start:start + self.batch_size]
            batch = tf.concat([self._preresize(image) for image in part], axis=0)
            chunks.append(self._run(batch).numpy().reshape(len(part), -1))
        return np.concatenate(chunks)


class KerasInception:
    """Keras InceptionV3 (no top, global average pooling) from a local `.h5` weights file.

    A convenience for users without the 2015 graph: the weights and the preprocessing differ
    from TTUR's, so its FID is NOT comparable with published numbers (reports say so).
    """

    def __init__(self, path, batch_size=DEFAULT_BATCH):
        import tensorflow as tf

        self.path = Path(path)
        if not self.path.is_file():
            raise MetricsError(f"{self.path}: no such file")
        self.sha256 = sha256_bytes(self.path.read_bytes())
        self.batch_size = max(1, int(batch_size))
        self.image_size = [299, 299]
        self.model = tf.keras.applications.InceptionV3(
            include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3))
        try:
            self.model.load_weights(str(self.path))
        except Exception as err:  # h5py and Keras raise many kinds
            raise MetricsError(f"{self.path}: not InceptionV3 no-top weights ({err})")
        self.feature_dim = int(self.model.output_shape[-1])
        self.name = "keras-inception-v3-avgpool"
        self._forward = tf.function(lambda x: self.model(x, training=False))

    def describe(self):
        return dict(name=self.name, file=str(self.path), sha256=self.sha256,
                    image_size=list(self.image_size), feature_dim=self.feature_dim,
                    batching=f"resized with tf.image.resize (bilinear), batches of "
                             f"{self.batch_size}",
                    protocol="Keras InceptionV3 weights and preprocessing: NOT "
                             "comparable with published FID")

    def embed(self, rgb_images):
        import tensorflow as tf

        chunks = []
        for start in range(0, len(rgb_images), self.batch_size):
            part = rgb_images[start:start + self.batch_size]
            batch = tf.concat([tf.image.resize(image[None].astype(np.float32), self.image_size)
                               for image in part], axis=0)
            chunks.append(self._forward(batch / 127.5 - 1.0).numpy())
        return np.concatenate(chunks)


def load_extractor(path, batch_size=DEFAULT_BATCH):
    """InceptionGraph for .pb/.tgz files, KerasInception for .h5/.keras files."""
    name = str(path).lower()
    if name.endswith(KERAS_EXTENSIONS):
        return KerasInception(path, batch_size)
    return InceptionGraph(path, batch_size)


def network_sha256(path):
    """The sha256 an extractor built from `path` would report, without building it."""
    if str(path).lower().endswith(KERAS_EXTENSIONS):
        try:
            return sha256_bytes(Path(path).read_bytes())
        except OSError as err:
            raise MetricsError(f"{path}: unreadable ({err.strerror or one_line(err)})")
    return sha256_bytes(_read_graph_bytes(path))


# --------------------------------------------------------------------------------------------
# Image sets and caches


@dataclass
class FeatureSet:
    """Features or statistics of one image set, with where they came from."""
    source: str
    kind: str                      # "folder" or "cache"
    count: int
    mean: np.ndarray
    cov: np.ndarray
    extractor: str
    sha256: str
    image_size: list
    features: np.ndarray = None    # N x D float32, or None for a cache saved without them
    skipped: list = field(default_factory=list)   # (path, reason)

    def describe(self):
        return dict(source=self.source, kind=self.kind, n=self.count,
                    skipped=len(self.skipped), has_features=self.features is not None)


def _read_rgb(path):
    """(RGB uint8 image, None) or (None, reason)."""
    try:
        return read_bgr(path)[:, :, ::-1], None
    except ImageError as err:
        return None, str(err)


def embed_paths(paths, extractor, progress=True, label="images"):
    """Features of image files; unreadable ones are reported on stderr and skipped.

    Returns (N x D float32 array, [(path, reason), ...]). Files are decoded in this thread:
    decoding silences fd 2 for a moment (libpng and libjpeg chatter), which in a worker
    thread could swallow the lines printed here; the network, not decoding, sets the pace.
    """
    paths = list(paths)
    chunks, skipped, pending = [], [], []
    bar = tqdm(total=len(paths), unit="img", desc=label, disable=not progress or not paths,
               dynamic_ncols=True, file=sys.stderr)

    def flush():
        if pending:
            chunks.append(np.asarray(extractor.embed(pending), np.float32))
            bar.update(len(pending))
            pending.clear()

    for path in paths:
        image, reason = _read_rgb(path)
        if reason is not None:
            skipped.append((str(path), reason))
            bar.write(f"skipped {display_path(path)}: {reason}", file=sys.stderr)
            bar.update(1)
            continue
        pending.append(image)
        if len(pending) >= extractor.batch_size:
            flush()
    flush()
    bar.close()
    dim = extractor.feature_dim or 0
    features = np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)
    return features, skipped


def features_to_set(features, extractor, source, kind="folder", skipped=()):
    """A FeatureSet from an N x D array computed with `extractor`."""
    if len(features) < 2:
        raise MetricsError(f"{source}: fewer than 2 usable images ({len(features)})")
    mean, cov = feature_statistics(features)
    return FeatureSet(source=str(source), kind=kind, count=len(features), mean=mean, cov=cov,
                      extractor=extractor.name, sha256=extractor.sha256,
                      image_size=list(extractor.image_size), features=features,
                      skipped=list(skipped))


def embed_folder(folder, extractor, recursive=False, progress=True, label=None):
    """FeatureSet of every image in `folder`, as image_io.list_images lists them (label: the
    progress bar's, default the folder's name)."""
    try:
        paths = list_images(folder, recursive)
    except ImageError as err:
        raise MetricsError(f"{folder}: {err}") from None
    features, skipped = embed_paths(paths, extractor, progress,
                                    label=label or Path(folder).name or str(folder))
    return features_to_set(features, extractor, folder, "folder", skipped)


def save_cache(path, fset, keep_features=True):
    """Write a FeatureSet as an .npz statistics cache (no pickled objects), atomically.

    Raises MetricsError when the file cannot be written.
    """
    path = Path(path)
    arrays = dict(format=np.int64(CACHE_FORMAT), mean=fset.mean, cov=fset.cov,
                  count=np.int64(fset.count), extractor=np.str_(fset.extractor),
                  sha256=np.str_(fset.sha256), image_size=np.asarray(fset.image_size, np.int64),
                  source=np.str_(fset.source), skipped=np.int64(len(fset.skipped)))
    if keep_features and fset.features is not None:
        arrays["features"] = np.asarray(fset.features, np.float32)
    try:
        with atomic_file(path) as (f, _):
            np.savez(f, **arrays)
    except OSError as err:
        reason = (f"{err.filename} is not a folder" if isinstance(err, FileExistsError)
                  else err.strerror or one_line(err))
        raise MetricsError(f"{path}: cannot write ({reason})")


CACHE_FIELDS = ("mean", "cov", "count", "extractor", "sha256", "image_size")


def _cache_arrays(path):
    """The arrays of the .npz at `path` as a dict, checked for the fields and shapes that
    `save_cache` writes; raises MetricsError saying what is wrong."""
    if not zipfile.is_zipfile(path):
        raise MetricsError(f"{path}: not an .npz statistics cache (not a zip archive, or "
                           f"truncated)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = sorted(set(CACHE_FIELDS) - set(data.files))
            if missing:
                raise MetricsError(f"{path}: not a statistics cache (missing "
                                   f"{', '.join(missing)})")
            arrays = {key: data[key] for key in data.files
                      if key in CACHE_FIELDS + ("features",)}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise MetricsError(f"{path}: damaged statistics cache ({one_line(err)})")
    mean, cov, features = arrays["mean"], arrays["cov"], arrays.get("features")
    dim = mean.shape[0] if mean.ndim == 1 else -1
    problems = [
        (mean.ndim != 1 or mean.dtype.kind != "f", f"mean of shape {mean.shape}"),
        (cov.shape != (dim, dim) or cov.dtype.kind != "f",
         f"covariance of shape {cov.shape} for {dim} features"),
        (arrays["count"].shape != () or arrays["count"].dtype.kind not in "iu"
         or arrays["count"] < 2, f"count {arrays['count']!r}"),
        (arrays["image_size"].shape != (2,) or arrays["image_size"].dtype.kind not in "iu",
         f"image_size {arrays['image_size']!r}"),
        (arrays["extractor"].shape != () or arrays["sha256"].shape != ()
         or arrays["extractor"].dtype.kind != "U" or arrays["sha256"].dtype.kind != "U",
         "extractor or sha256 not a text"),
        (features is not None and (features.ndim != 2 or features.shape[1] != dim),
         f"features of shape {None if features is None else features.shape}"),
        (not np.isfinite(mean).all(), "mean has NaN or infinite values"),
        (not np.isfinite(cov).all(), "covariance has NaN or infinite values"),
        (features is not None and features.dtype.kind == "f"
         and not np.isfinite(features).all(), "features have NaN or infinite values"),
    ]
    for bad, what in problems:
        if bad:
            raise MetricsError(f"{path}: not a statistics cache ({what})")
    return arrays


def load_cache(path):
    """Read an .npz statistics cache written by `save_cache`."""
    arrays = _cache_arrays(Path(path))
    return FeatureSet(source=str(path), kind="cache", count=int(arrays["count"]),
                      mean=arrays["mean"].astype(np.float64), cov=arrays["cov"].astype(np.float64),
                      extractor=str(arrays["extractor"]), sha256=str(arrays["sha256"]),
                      image_size=[int(v) for v in arrays["image_size"]],
                      features=arrays.get("features"))


def is_cache(path):
    return Path(path).is_file() and str(path).lower().endswith(".npz")


def load_set(path, extractor_factory, recursive=False, progress=True, label=None):
    """A folder (embedded with extractor_factory()) or a cache, as a FeatureSet."""
    if is_cache(path):
        return load_cache(path)
    if not Path(path).is_dir():
        raise MetricsError(f"{path}: neither a folder of images nor an .npz cache")
    return embed_folder(path, extractor_factory(), recursive, progress, label)


def check_compatible(a, b):
    """Refuse to compare sets embedded by different networks or at different sizes."""
    if (a.extractor, a.sha256) != (b.extractor, b.sha256):
        raise MetricsError(f"{a.source} ({a.extractor}, sha256 {a.sha256[:12]}...) and "
                           f"{b.source} ({b.extractor}, sha256 {b.sha256[:12]}...) were "
                           f"embedded by different networks")
    if list(a.image_size) != list(b.image_size) or a.mean.shape != b.mean.shape:
        raise MetricsError(f"{a.source} and {b.source}: different image or feature sizes")


def compare(a, b, kid=False, kid_subsets=100, kid_subset_size=1000, seed=0):
    """FID (and optionally KID) between two FeatureSets; a dict for the JSON report."""
    check_compatible(a, b)
    report = dict(fid=frechet_distance(a.mean, a.cov, b.mean, b.cov),
                  n_a=a.count, n_b=b.count)
    warnings = []
    if a.extractor == GRAPH_NAME and (a.mean.size != 2048 or list(a.image_size) != [299, 299]):
        warnings.append(f"{a.mean.size} features at {a.image_size[0]}x{a.image_size[1]}, not "
                        f"2048 at 299x299: this is not the 2015-12-05 Inception graph, so "
                        f"these numbers are not FID (a stand-in's smoke test at most)")
    if min(a.count, b.count) < a.mean.size:
        warnings.append(f"fewer images ({min(a.count, b.count)}) than feature dimensions "
                        f"({a.mean.size}): the covariance is singular and FID is strongly "
                        f"biased upwards; compare only at equal n, or use KID")
    if kid:
        missing = [s.source for s in (a, b) if s.features is None]
        if missing:
            raise MetricsError(f"KID needs features; cache saved without them: "
                               f"{', '.join(missing)}")
        report["kid"] = kernel_inception_distance(a.features, b.features, kid_subsets,
                                                  kid_subset_size, seed)
    report["warnings"] = warnings
    return report
