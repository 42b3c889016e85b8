"""FID cost on this machine: feature extraction (images/s) and the FID arithmetic (seconds).

Prints one JSON object. Run from the repository root:
    .venv/bin/python bench/fid.py [--inception PATH] [--images 64] [--n 10000]

- extraction at 299x299, batch 32 and batch 1: with --inception, through that network file as
  evaluate.py uses it; without, through a Keras InceptionV3 with random weights, which has the
  same architecture (and so about the same cost) as the 2015-12-05 graph; the report says which;
- the FID arithmetic for n random feature vectors of d = 2048: statistics (mean, covariance)
  of both sets and the Fréchet distance (matrix square root), in seconds.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from whitebox.base.quiet_tf import import_tensorflow  # noqa: E402

tf = import_tensorflow()
from whitebox.base.cpuinfo import cpu_info  # noqa: E402
from whitebox.evaluate import distances, inception  # noqa: E402


class RandomKerasInception:
    """Keras InceptionV3 (no top, average pooling) with random weights: a cost stand-in."""

    def __init__(self, batch_size):
        self.batch_size = batch_size
        model = tf.keras.applications.InceptionV3(include_top=False, weights=None,
                                                  pooling="avg", input_shape=(299, 299, 3))
        self._forward = tf.function(lambda x: model(x, training=False))

    def embed(self, images):
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = np.stack(images[start:start + self.batch_size]).astype(np.float32)
            out.append(self._forward(batch / 127.5 - 1.0).numpy())
        return np.concatenate(out)


def images_per_second(extractor, images):
    extractor.embed(images[:extractor.batch_size])      # warm-up (tracing)
    start = time.perf_counter()
    extractor.embed(images)
    return len(images) / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inception", metavar="PATH", help="network file (default: random Keras)")
    p.add_argument("--images", type=int, default=64, help="images per timing (default 64)")
    p.add_argument("--n", type=int, default=10000, help="feature vectors per set (default 10000)")
    args = p.parse_args()

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (299, 299, 3), np.uint8) for _ in range(args.images)]
    report = dict(cpu_count=os.cpu_count(), cpu=cpu_info(), tensorflow=tf.__version__)
    extraction = {}
    for batch in (32, 1):
        if args.inception:
            net = inception.load_extractor(args.inception, batch)
            extraction["network"] = f"{net.name} ({args.inception})"
        else:
            net = RandomKerasInception(batch)
            extraction["network"] = "Keras InceptionV3, random weights (cost stand-in)"
        count = images if batch > 1 else images[:max(8, args.images // 4)]
        extraction[f"images_per_s_batch_{batch}"] = round(images_per_second(net, count), 2)
    report["extraction_299"] = extraction

    d = 2048
    a = rng.standard_normal((args.n, d)).astype(np.float32)
    b = (rng.standard_normal((args.n, d)) * 1.1 + 0.05).astype(np.float32)
    start = time.perf_counter()
    m1, c1 = distances.feature_statistics(a)
    m2, c2 = distances.feature_statistics(b)
    stats_s = time.perf_counter() - start
    start = time.perf_counter()
    value = distances.frechet_distance(m1, c1, m2, c2)
    distance_s = time.perf_counter() - start
    report["fid_math"] = dict(n=args.n, d=d, statistics_s=round(stats_s, 2),
                              frechet_distance_s=round(distance_s, 2),
                              total_s=round(stats_s + distance_s, 2), value=round(value, 3))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
