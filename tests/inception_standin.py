"""A small frozen graph laid out like the 2015-12-05 Inception graph, for tests and smoke runs.

It has the real graph's front (a constant `DecodeJpeg/contents`, `DecodeJpeg`, `Cast`,
`ExpandDims`, `ResizeBilinear` with a constant size, `Sub` 128, `Mul` 1/128) and its output
names (`pool_3` of shape [1, 1, 1, D], then `pool_3/_reshape` to a hard-coded [1, D], as the
real graph has, and a softmax), with two small random convolutions in between. Its numbers
mean nothing; they only exercise the loading, resizing and batching code.

Command line (for a smoke run of evaluate.py):
    python tests/inception_standin.py OUT.pb [--size 299] [--dim 64]
"""
import argparse
import io
import tarfile
from pathlib import Path

import numpy as np


def standin_graph_bytes(size=64, dim=16, seed=0):
    """Serialized GraphDef of the stand-in: input resized to size x size, D = dim features."""
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
            x = tf.nn.relu(tf.nn.conv2d(x, kernel, strides=2, padding="SAME"), name=f"conv_{i}")
        x = tf.reduce_mean(x, axis=[1, 2], keepdims=True, name="pool_3")
        flat = tf.reshape(x, tf.constant([1, dim], name="pool_3/_reshape/shape"),
                          name="pool_3/_reshape")
        weights = tf.constant(rng.standard_normal((dim, 10)).astype(np.float32),
                              name="softmax/weights")
        tf.nn.softmax(tf.matmul(flat, weights), name="softmax")
    return graph.as_graph_def().SerializeToString()


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
