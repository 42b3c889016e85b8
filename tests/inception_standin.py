"""A small frozen graph laid out like the 2015-12-05 Inception graph, for tests and smoke runs.

It has the real graph's front (a constant `DecodeJpeg/contents`, `DecodeJpeg`, `Cast`,
`ExpandDims`, `ResizeBilinear` with a constant size, `Sub` 128, `Mul` 1/128) and its output
names (`pool_3` of shape [1, 1, 1, D], then `pool_3/_reshape` to a hard-coded [1, D], as the
real graph has, and a softmax), with two small random convolutions in between, the first
followed by a BatchNormWithGlobalNormalization node as in the real graph. Its numbers
mean nothing; they only exercise the loading, resizing and batching code.

Command line (for a smoke run of evaluate.py):
    python tests/inception_standin.py OUT.pb [--size 299] [--dim 64]
"""
import argparse
import io
import tarfile
from pathlib import Path

import numpy as np


def standin_graph_bytes(size=64, dim=16, seed=0, batchnorm_op=True):
    """Serialized GraphDef of the stand-in: input resized to size x size, D = dim features.

    batchnorm_op: normalise after the first convolution with BatchNormWithGlobalNormalization,
    the op the 2015 graph uses (removed from TensorFlow since GraphDef version 9); False: the
    same arithmetic in current ops.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        contents = tf.constant(b"", name="DecodeJpeg/contents")  # never run: must be pruned
        decoded = tf.io.decode_jpeg(contents, channels=3, name="DecodeJpeg")
        x = tf.cast(decoded, tf.float32, name="Cast")
        x = tf.expand_dims(x, 0, name="ExpandDims")
        x = tf.raw_ops.ResizeBilinear(images=x, size=tf.constant([size, size], tf.int32,
                                                                 name="ResizeBilinear/size"),
                                      align_corners=False, name="ResizeBilinear")
        x = tf.subtract(x, tf.constant(128.0, name="Sub/y"), name="Sub")
        x = tf.multiply(x, tf.constant(1.0 / 128.0, name="Mul/y"), name="Mul")
        for i, (cin, cout) in enumerate([(3, 8), (8, dim)]):
            kernel = tf.constant((rng.standard_normal((3, 3, cin, cout))
                                  / np.sqrt(9 * cin)).astype(np.float32), name=f"conv_{i}/weights")
            x = tf.nn.conv2d(x, kernel, strides=2, padding="SAME", name=f"conv_{i}/Conv2D")
            if i == 0:
                x = _batchnorm_by_hand(x, rng, cout)
            x = tf.nn.relu(x, name=f"conv_{i}")
        x = tf.reduce_mean(x, axis=[1, 2], keepdims=True, name="pool_3")
        flat = tf.reshape(x, tf.constant([1, dim], name="pool_3/_reshape/shape"),
                          name="pool_3/_reshape")
        weights = tf.constant(rng.standard_normal((dim, 10)).astype(np.float32),
                              name="softmax/weights")
        tf.nn.softmax(tf.matmul(flat, weights), name="softmax")
    graph_def = graph.as_graph_def()
    if batchnorm_op:
        _use_the_deprecated_op(graph_def)
    return graph_def.SerializeToString()


BN = "conv_0/batchnorm"
BN_EPSILON = 1e-3


def _batchnorm_by_hand(x, rng, channels):
    """(x - mean) * rsqrt(variance + eps) * gamma + beta with constants named as the 2015
    graph names them; the result is the node conv_0/batchnorm."""
    import tensorflow as tf

    values = dict(moving_mean=rng.standard_normal(channels) * 0.1,
                  moving_variance=rng.uniform(0.5, 2.0, channels),
                  beta=rng.standard_normal(channels) * 0.1,
                  gamma=rng.uniform(0.5, 1.5, channels))
    c = {k: tf.constant(v.astype(np.float32), name=f"{BN}/{k}") for k, v in values.items()}
    with tf.name_scope("bn_by_hand"):
        scale = tf.math.rsqrt(c["moving_variance"] + BN_EPSILON) * c["gamma"]
        scaled = (x - c["moving_mean"]) * scale
    return tf.add(scaled, c["beta"], name=BN)


def _use_the_deprecated_op(graph_def):
    """Swap the by-hand batch norm for one BatchNormWithGlobalNormalization node, as the 2015
    graph has it (TF2 cannot create that op any more, so the NodeDef is written directly), and
    mark the GraphDef as produced before the op's removal (version 9)."""
    import tensorflow as tf

    kept = [n for n in graph_def.node
            if not n.name.startswith("bn_by_hand/") and n.name != BN]
    node = tf.compat.v1.NodeDef(name=BN, op="BatchNormWithGlobalNormalization",
                                input=["conv_0/Conv2D", f"{BN}/moving_mean",
                                       f"{BN}/moving_variance", f"{BN}/beta", f"{BN}/gamma"])
    node.attr["T"].type = tf.float32.as_datatype_enum
    node.attr["variance_epsilon"].f = BN_EPSILON
    node.attr["scale_after_normalization"].b = True
    del graph_def.node[:]
    graph_def.node.extend(kept + [node])
    graph_def.versions.producer = 8


def write_standin(folder, size=64, dim=16, seed=0):
    """Write the stand-in as folder/classify_image_graph_def.pb and, holding the same bytes,
    folder/inception-2015-12-05.tgz; returns (pb path, tgz path)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = standin_graph_bytes(size, dim, seed)
    pb = folder / "classify_image_graph_def.pb"
    pb.write_bytes(data)
    tgz = folder / "inception-2015-12-05.tgz"
    with tarfile.open(tgz, "w:gz") as archive:
        for name, payload in [("LICENSE", b"stand-in\n"), ("classify_image_graph_def.pb", data)]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return pb, tgz


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="the .pb file to write")
    parser.add_argument("--size", type=int, default=299)
    parser.add_argument("--dim", type=int, default=64)
    args = parser.parse_args()
    Path(args.output).write_bytes(standin_graph_bytes(args.size, args.dim))
    print(args.output)
