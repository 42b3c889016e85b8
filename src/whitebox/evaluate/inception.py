"""Inception-v3 feature extractors: `InceptionGraph`, the 2015-12-05 frozen graph of TTUR and
most GAN papers, and `KerasInception`, whose numbers are NOT comparable with published ones;
`load_extractor(path)` picks one by name. `embed` takes a list of HxWx3 uint8 RGB arrays and
returns N x D float32.

InceptionGraph follows TTUR: float32 RGB in 0..255 goes to `ExpandDims:0` (after the graph's JPEG
decoder), which resizes it bilinearly to 299x299 and scales it to [-1, 1]; `pool_3:0` holds the
2048 features. That input takes one image of any size, so for batch_size > 1 each image is first
resized here by the graph's own `ResizeBilinear`; the graph's 299-to-299 resize is then an exact
copy, and the features those of batch_size=1 (TTUR's path; the tests compare the two).
"""
import hashlib
import tarfile
import zlib
from pathlib import Path

import numpy as np

from whitebox.base.errors import one_line
from whitebox.base.files import sha256_file
from whitebox.evaluate import DEFAULT_BATCH
from whitebox.evaluate.distances import MetricsError

INPUT_TENSOR = "ExpandDims:0"
OUTPUT_TENSOR = "pool_3:0"
GRAPH_MEMBER = "classify_image_graph_def.pb"
GRAPH_NAME = "inception-2015-12-05-pool3"
KERAS_EXTENSIONS = (".h5", ".keras")


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
    """Replace each BatchNormWithGlobalNormalization node (removed in GraphDef version 9: it
    fails at run time under TF2) by its kernel's arithmetic, in its order, per channel:
    (x - mean) * (rsqrt(variance + epsilon) [* gamma]) + beta; the last node keeps the name,
    so consumers are untouched. Returns how many were replaced."""
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

        def add(op, name, inputs):
            new = tf.compat.v1.NodeDef(name=f"{base}/{name}" if name else node.name, op=op,
                                       input=inputs, device=node.device)
            new.attr["T"].type = dtype
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


def _float_batch(rgb):
    """HxWx3 uint8 RGB -> a 1xHxWx3 float32 tensor."""
    import tensorflow as tf

    return tf.constant(rgb[None].astype(np.float32))


class _Extractor:
    def __init__(self, path, batch_size):
        self.path, self.batch_size = Path(path), max(1, int(batch_size))

    def describe(self, **more):
        """What every report states about the extractor."""
        return dict(name=self.name, file=str(self.path), sha256=self.sha256,
                    image_size=list(self.image_size), feature_dim=self.feature_dim, **more)

    def embed(self, images):
        """`_embed_part` of each `batch_size` images in turn, concatenated."""
        step = self.batch_size
        return np.concatenate([self._embed_part(images[i:i + step])
                               for i in range(0, len(images), step)])


class InceptionGraph(_Extractor):
    """pool_3 features of the 2015-12-05 graph, from `classify_image_graph_def.pb` or the
    `inception-2015-12-05.tgz` holding it; `sha256` is that of the GraphDef bytes in both."""
    name = GRAPH_NAME

    def __init__(self, path, batch_size=DEFAULT_BATCH):
        import tensorflow as tf

        super().__init__(path, batch_size)
        data = _read_graph_bytes(self.path)
        self.sha256 = hashlib.sha256(data).hexdigest()
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
        resize = self._find_resize(graph_def, nodes)
        if resize is None:
            raise MetricsError(f"{self.path}: no ResizeBilinear with a constant size after "
                               f"{INPUT_TENSOR}")
        self.image_size, self._resize_attrs = resize

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

    @staticmethod
    def _find_resize(graph_def, nodes):
        """([height, width], attributes) of the ResizeBilinear reading the input, or None."""
        from tensorflow.python.framework import tensor_util

        source = INPUT_TENSOR.split(":")[0]
        for node in graph_def.node:
            if node.op != "ResizeBilinear" or not node.input or \
                    node.input[0].split(":")[0] != source:
                continue
            size_node = nodes.get(node.input[1].split(":")[0])
            if size_node is None or size_node.op != "Const":
                return None
            size = tensor_util.MakeNdarray(size_node.attr["value"].tensor)
            return [int(v) for v in size], {key: bool(node.attr[key].b) for key in
                                            ("align_corners", "half_pixel_centers")}
        return None

    def describe(self):
        return super().describe(
            input=INPUT_TENSOR, output=OUTPUT_TENSOR,
            batchnorm_nodes_rewritten=self.rewritten_batchnorms,
            batching=(f"images resized to {self.image_size[0]}x{self.image_size[1]} with the "
                      f"graph's ResizeBilinear, then batches of {self.batch_size}"
                      if self.batch_size > 1 else "one image at a time at its own size"),
            protocol="TTUR: RGB floats 0..255 at ExpandDims:0, the graph resizes, pool_3:0 "
                     "read; comparable with published FID only when sha256 is that of the "
                     "genuine 2015-12-05 graph")

    def embed_one(self, rgb):
        """One image at its own size -> D float32 (TTUR's path)."""
        return self._run(_float_batch(rgb)).numpy().reshape(-1)

    def _embed_part(self, part):
        import tensorflow as tf

        batch = tf.concat([tf.raw_ops.ResizeBilinear(
            images=_float_batch(rgb), size=self.image_size, **self._resize_attrs)
            for rgb in part], axis=0)
        return self._run(batch).numpy().reshape(len(part), -1)

    def embed(self, images):
        if self.batch_size == 1:
            return np.stack([self.embed_one(image) for image in images])
        return super().embed(images)


class KerasInception(_Extractor):
    """Keras InceptionV3 (no top, global average pooling) from a local `.h5` weights file, for
    users without the 2015 graph: other weights and preprocessing, so its FID is NOT comparable
    with published numbers (reports say so)."""
    name = "keras-inception-v3-avgpool"

    def __init__(self, path, batch_size=DEFAULT_BATCH):
        import tensorflow as tf

        super().__init__(path, batch_size)
        if not self.path.is_file():
            raise MetricsError(f"{self.path}: no such file")
        self.sha256 = network_sha256(self.path)
        self.image_size = [299, 299]
        self.model = tf.keras.applications.InceptionV3(
            include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3))
        try:
            self.model.load_weights(str(self.path))
        except Exception as err:  # h5py and Keras raise many kinds
            raise MetricsError(f"{self.path}: not InceptionV3 no-top weights ({err})")
        self.feature_dim = int(self.model.output_shape[-1])
        self._forward = tf.function(lambda x: self.model(x, training=False))

    def describe(self):
        return super().describe(
            batching=f"resized with tf.image.resize (bilinear), batches of {self.batch_size}",
            protocol="Keras InceptionV3 weights and preprocessing: NOT comparable with "
                     "published FID")

    def _embed_part(self, part):
        import tensorflow as tf

        batch = tf.concat([tf.image.resize(image[None].astype(np.float32), self.image_size)
                           for image in part], axis=0)
        return self._forward(batch / 127.5 - 1.0).numpy()


def load_extractor(path, batch_size=DEFAULT_BATCH):
    """InceptionGraph for .pb/.tgz files, KerasInception for .h5/.keras files."""
    keras = str(path).lower().endswith(KERAS_EXTENSIONS)
    return (KerasInception if keras else InceptionGraph)(path, batch_size)


def network_sha256(path):
    """The sha256 an extractor built from `path` would report, without building it."""
    if str(path).lower().endswith(KERAS_EXTENSIONS):
        try:
            return sha256_file(path).hexdigest()
        except OSError as err:
            raise MetricsError(f"{path}: unreadable ({err.strerror or one_line(err)})")
    return hashlib.sha256(_read_graph_bytes(path)).hexdigest()
