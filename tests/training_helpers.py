"""Small stand-ins shared by the training tests: tiny VGG weights, image folders, data lists."""
import sys
import types

import cv2
import numpy as np

TINY_CHANNELS = {"conv1": 4, "conv2": 6, "conv3": 8, "conv4": 8}


def tiny_vgg_weights(seed=0):
    from whitebox.model import vgg
    return vgg.random_weights(seed, TINY_CHANNELS)


def tiny_vgg(seed=0):
    from whitebox.model.vgg import VGG19Conv44
    return VGG19Conv44(tiny_vgg_weights(seed))


def write_images(folder, count, size=32, seed=0, prefix="img"):
    """`count` random BGR PNGs of size x size (int or (h, w)) in `folder`; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    h, w = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(count):
        # Smooth colour gradients plus noise, so superpixels have something to find.
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(yy * (k + 1) * 7) % 256, (xx * 5 + k * 40) % 256,
                         ((yy + xx) * 3) % 256], -1)
        image = np.clip(base + rng.integers(-10, 10, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"{prefix}{k:03d}.png"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def make_dataset(root, count=4, size=32, face=True):
    """root/<domain>/ image folders for the four domains (face ones optional)."""
    from whitebox.train.data import DOMAINS
    for i, domain in enumerate(DOMAINS):
        if face or "scenery" in domain:
            write_images(root / domain, count, size, seed=i)
    return root


def tiny_run_folder(root, face=True):
    """root/dataset (3 images of 32x32 per domain), root/lists and root/vgg.npz (tiny VGG):
    everything a tiny training run reads. Returns root."""
    from whitebox.model import vgg
    from whitebox.train.data import folders_under, make_lists

    make_dataset(root / "dataset", count=3, size=32, face=face)
    make_lists(folders_under(root / "dataset"), root / "lists")
    vgg.save_npz(tiny_vgg_weights(0), root / "vgg.npz")
    return root


def tiny_train_config(root, out, **overrides):
    """A TrainConfig of 2 iterations at batch 2, patch 32, over `tiny_run_folder(root)`'s data,
    writing to root/out; `overrides` replace any field."""
    from whitebox.train.config import TrainConfig

    values = dict(data_lists=str(root / "lists"), out_dir=str(root / out), batch_size=2,
                  patch_size=32, iterations=2, save_every=2, sample_every=2, print_every=1,
                  vgg=str(root / "vgg.npz"), superpixel_jobs=1, disc_channel=8, seed=7)
    values.update(overrides)
    return TrainConfig(**values)


def fake_superpixel_module(calls=None):
    """A stand-in for whitebox.model.superpixel (posterises the input) that records its inputs."""
    module = types.ModuleType("whitebox.model.superpixel")

    def superpixel_batch(batch, method="slic", n_jobs=None, seg_num=200):
        if calls is not None:
            calls.append((np.array(batch), method))
        return (np.round(np.asarray(batch) * 2.0) / 2.0).astype(np.float32)

    module.superpixel_batch = superpixel_batch
    return module


def install_fake_superpixel(monkeypatch, calls=None):
    monkeypatch.setitem(sys.modules, "whitebox.model.superpixel", fake_superpixel_module(calls))


# Losses of the generator and discriminator objectives: name -> (objective, term of the config
# whose weight the loss enters the objective with; None: weight 1).
_OBJECTIVE_SHARE = {"g_loss_total": ("g_loss_total", None),
                    "d_loss_total": ("d_loss_total", None),
                    "d_loss_blur": ("d_loss_total", None), "d_loss_gray": ("d_loss_total", None),
                    "recon_loss": ("g_loss_total", "content")}


def assert_losses_close(a, b, weights=None, rtol=1e-5, where=""):
    """The losses of one iteration of two runs ({name: float} each, the same names) agree.

    Each loss may differ by `rtol` of its own value or of its share of the objective it enters,
    whichever is larger: a term of weight w in g_loss_total (d_loss_total) by rtol * |total| / w.
    A loss near zero (tv_loss is about 1e-7 on a smooth output, and weighs 1e4) so gets the
    floor its weight in the objective gives it, rather than a relative tolerance that another
    CPU's kernels (oneDNN or Eigen, AVX2, AVX-512 or AMX) exceed in its last bits.
    weights: {term: weight} of the run (TrainConfig.active_weights()); None for a pretrain run
    (recon_loss alone, to rtol of itself)."""
    from whitebox.train.config import TERM_SCALARS

    assert a.keys() == b.keys(), where
    share = dict(_OBJECTIVE_SHARE)
    share.update({scalar: ("g_loss_total", term) for term, scalar in TERM_SCALARS.items()})
    for name, x in a.items():
        total, term = share[name] if weights is not None else (name, None)
        weight = weights.get(term, 1.0) if term and weights else 1.0
        tol = rtol * max(abs(x), abs(a.get(total, x)) / weight)
        assert abs(b[name] - x) <= tol, (where, name, b[name], x, tol)


def assert_same_variables(a, b, lr=None, rtol=1e-5):
    """Checkpoint variables of two runs ({name: array}) agree: integers (colour-shift RNG state,
    step counters, iteration) exactly, float arrays within `rtol` of each array's largest
    magnitude (Adam's second moments are about 1e-8, a generator kernel about 0.1).

    lr: the learning rate when the runs sum gradients in another order (other replicas): an
    element of the generator whose gradient is near Adam's epsilon (1e-8) then moves by up to
    one learning rate, as Adam's first steps amplify last-bit differences; such elements are
    allowed 2 * lr, at most 1 in 1000 of the generator's."""
    assert a.keys() == b.keys()
    off = size = 0
    for key, x in a.items():
        y = b[key]
        if x.dtype.kind != "f":
            np.testing.assert_array_equal(x, y, err_msg=key)
            continue
        diff = np.abs(x - y)
        scale = np.abs(x).max()
        if lr is not None and key.startswith("generator/"):
            off += int(np.sum(diff > rtol * scale))
            size += x.size
            assert diff.max() <= 2 * lr, (key, diff.max())
        else:
            assert diff.max() <= rtol * scale, (key, diff.max(), scale)
    assert lr is None or 0 < size and off <= 1e-3 * size, (off, size)


def checkpoint_variables(path):
    """{name: array} of the variables of checkpoint `path` (a prefix, or a folder: its newest
    checkpoint), the object graph left out."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(path))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def tiny_adversarial_step(monkeypatch, calls=None, **overrides):
    """An AdversarialStep at batch 2, patch 32 (tiny VGG, discriminators of 8 channels, the
    fake superpixel step recording into `calls`), seeded with 0; `overrides` are TrainConfig
    fields."""
    import tensorflow as tf

    from whitebox.train.config import TrainConfig
    from whitebox.train.steps import AdversarialStep

    install_fake_superpixel(monkeypatch, calls)
    tf.keras.utils.set_random_seed(0)
    config = TrainConfig(vgg="stand-in", batch_size=2, patch_size=32, disc_channel=8,
                         **overrides)
    config.validate()
    return AdversarialStep(config, tiny_vgg())


def random_batches(n, seed=0, size=32):
    """`n` (photo, cartoon) pairs of [2, size, size, 3] float32 tensors uniform in [-1, 1]."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    return [tuple(tf.constant(rng.uniform(-1, 1, [2, size, size, 3]), tf.float32)
                  for _ in range(2)) for _ in range(n)]


def run_iterations(trainer, batches):
    """[{loss name: float}] of one trainer.iteration per batch."""
    return [{k: float(v) for k, v in trainer.iteration(*b).items()} for b in batches]
