"""Pre-training and adversarial training: the steps as tf.function, and the loop around them.

One adversarial iteration (REFERENCE.md section 6), with P photos and C cartoons:

  G step: out = gf(P, G(P), r=1, eps=1e-2) (or the raw G(P) with the F_st switch off);
          S = superpixel(stop_gradient(out)); the generator losses on out; one Adam step on G.
  D step: out' = the same function of P with the UPDATED generator; the discriminator losses
          on out' and C; one Adam step on both discriminators.

The reference runs the generator three times per iteration (once to feed the superpixel step,
once in the G step, once in the D step) and recomputes every generator loss in its D-step run
for the summaries. Here the G step's single forward pass feeds both the superpixel op and the
losses (the weights are the same), and the logged generator losses are the G step's. The
updates are the same.
"""
import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from whitebox import data as data_lib
from whitebox import losses, representations
from whitebox.checkpoints import list_checkpoints, load_generator, restore_newest, set_aside
from whitebox.config import ConfigError, config_from_json, resume_mismatches
from whitebox.guided_filter import guided_filter
from whitebox.image_io import write_atomic
from whitebox.network import Discriminator, Generator

# The reference's TensorBoard scalar names, in the order it declares them.
SCALARS = ("tv_loss", "photo_loss", "superpixel_loss", "recon_loss", "d_loss_gray",
           "g_loss_gray", "d_loss_blur", "g_loss_blur", "d_loss_total", "g_loss_total")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the iteration, the term and the last
    checkpoint."""


# ---------------------------------------------------------------------------- optimiser

class _Untracked:
    """A plain holder: objects inside it are invisible to tf.Module and checkpoint tracking."""

    def __init__(self, value):
        self.value = value


class Adam(tf.Module):
    """Adam exactly as TF1's `tf.train.AdamOptimizer` updates (the "epsilon hat" form):

        lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
        m = m + (g - m) * (1 - beta1);   v = v + (g^2 - v) * (1 - beta2)
        theta = theta - lr_t * m / (sqrt(v) + epsilon)

    with beta^t kept as running products (`beta1_power`, `beta2_power`), as TF1 keeps them.
    Keras 3's Adam (3.15) uses the same formula, with beta^t from `pow` and a default epsilon
    of 1e-7; this class exists so the slots are created up front, checkpoint as plain variables
    and restore before the first step.
    """

    def __init__(self, variables, lr=2e-4, beta1=0.5, beta2=0.99, epsilon=1e-8, name="adam"):
        super().__init__(name=name)
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        # Held outside tf.Module's tracking: the targets belong to the networks and must be
        # checkpointed under their names, not under the optimiser's.
        self._holder = _Untracked(list(variables))
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.targets]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.targets]
        self.beta1_power = tf.Variable(beta1, dtype=tf.float32, trainable=False)
        self.beta2_power = tf.Variable(beta2, dtype=tf.float32, trainable=False)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)

    @property
    def targets(self):
        return self._holder.value

    def apply(self, gradients):
        """One update of every target variable with `gradients` (same order, no None)."""
        lr_t = self.lr * tf.sqrt(1.0 - self.beta2_power) / (1.0 - self.beta1_power)
        for g, var, m, v in zip(gradients, self.targets, self.m, self.v):
            m.assign_add((g - m) * (1.0 - self.beta1))
            v.assign_add((tf.square(g) - v) * (1.0 - self.beta2))
            var.assign_sub(lr_t * m / (tf.sqrt(v) + self.epsilon))
        self.beta1_power.assign(self.beta1_power * self.beta1)
        self.beta2_power.assign(self.beta2_power * self.beta2)
        self.step.assign_add(1)


def _apply(optimizer, tape, loss):
    grads = tape.gradient(loss, optimizer.targets)
    missing = [v.name for v, g in zip(optimizer.targets, grads) if g is None]
    if missing:
        raise ValueError(f"no gradient for {', '.join(missing)}")
    optimizer.apply(grads)


# ---------------------------------------------------------------------------- steps

class Pretrainer:
    """`pretrain.py`: one Adam step on mean|P - G(P)| (raw generator, no guided filter)."""

    def __init__(self, config):
        self.config = config
        self.generator = Generator()
        self.opt_g = Adam(self.generator.trainable_variables, config.lr, config.beta1,
                          config.beta2, config.adam_epsilon, name="adam_generator")
        self.step = tf.function(self._step)
        self.sample = tf.function(self.generator.__call__)

    def _step(self, photo):
        with tf.GradientTape() as tape:
            loss = losses.l1(photo, self.generator(photo))
        _apply(self.opt_g, tape, loss)
        return {"recon_loss": loss}

    def iteration(self, photo, cartoon=None):
        return self.step(photo)

    def checkpoint_objects(self):
        return {"generator": self.generator, "optimizer_generator": self.opt_g}


class AdversarialTrainer:
    """`train.py`: the G step and the D step (see the module docstring).

    config: TrainConfig. vgg: a callable BGR [-1, 1] -> conv4_4 features (vgg.VGG19Conv44),
    needed when the content or structure term is on. Terms switched off are not computed; a
    discriminator whose term is off is neither built nor trained.
    """

    def __init__(self, config, vgg=None, superpixel_jobs=None):
        self.config = config
        self.weights = config.active_weights()
        if self.weights.keys() & {"content", "structure"} and vgg is None:
            raise ConfigError("the content and structure terms need a VGG19 (vgg=...)")
        self.vgg = vgg
        self.superpixel_jobs = superpixel_jobs or None
        self.generator = Generator()
        self.disc_gray = (Discriminator(1, config.disc_channel, "disc_gray")
                          if "texture" in self.weights else None)
        self.disc_blur = (Discriminator(3, config.disc_channel, "disc_blur")
                          if "surface" in self.weights else None)
        self.opt_g = Adam(self.generator.trainable_variables, config.lr, config.beta1,
                          config.beta2, config.adam_epsilon, name="adam_generator")
        disc_vars = [v for d in (self.disc_gray, self.disc_blur) if d is not None
                     for v in d.trainable_variables]
        self.opt_d = Adam(disc_vars, config.lr, config.beta1, config.beta2,
                          config.adam_epsilon, name="adam_discriminator") if disc_vars else None
        # Colour-shift weights are drawn from this generator; its state is checkpointed.
        self.rng = tf.random.Generator.from_seed(config.seed)
        self.g_step = tf.function(self._g_step)
        self.d_step = tf.function(self._d_step)
        self.sample = tf.function(self.output)

    # -- the generator output every loss sees

    def output(self, photo):
        """gf(P, G(P), r=1, eps=1e-2) with the F_st switch on (the code), G(P) with it off."""
        raw = self.generator(photo)
        if self.config.fst_in_losses:
            return guided_filter(photo, raw, self.config.fst_radius, self.config.fst_eps)
        return raw

    def _disc_logits(self, disc, real, fake, need_real):
        """Patch logits (real or None, fake). In sn_mode 'joint' one call on [real; fake] (u
        advances once per step, as in TF1); in 'separate' two calls (u advances twice)."""
        if self.config.sn_mode == "joint":
            if not need_real:
                return None, disc(fake)
            logits = disc(tf.concat([real, fake], axis=0))
            n = tf.shape(real)[0]
            return logits[:n], logits[n:]
        real_logits = disc(real)
        return (real_logits if need_real else None), disc(fake)

    # -- G step

    def generator_losses(self, out, photo, cartoon):
        """{scalar name: loss} of the generator objective for generator output `out`."""
        w = self.weights
        terms = {}
        total = tf.constant(0.0)
        if "surface" in w:
            _, fake = self._disc_logits(self.disc_blur, representations.surface(cartoon)
                                        if self.config.sn_mode == "separate" else None,
                                        representations.surface(out), need_real=False)
            terms["g_loss_blur"] = losses.lsgan_g_loss(fake)
            total += w["surface"] * terms["g_loss_blur"]
        if "texture" in w:
            gray_fake, gray_cartoon = representations.texture(out, cartoon, rng=self.rng)
            _, fake = self._disc_logits(self.disc_gray, gray_cartoon if
                                        self.config.sn_mode == "separate" else None,
                                        gray_fake, need_real=False)
            terms["g_loss_gray"] = losses.lsgan_g_loss(fake)
            total += w["texture"] * terms["g_loss_gray"]
        if "content" in w or "structure" in w:
            references = [photo]
            if "structure" in w:
                references.append(representations.structure(
                    out, self.config.superpixel, self.superpixel_jobs,
                    self.config.superpixel_segments))
            # The targets need no gradient: one batched pass, then the output's own pass.
            target_features = tf.stop_gradient(self.vgg(tf.concat(references, axis=0)))
            out_features = self.vgg(out)
            n = tf.shape(photo)[0]
            recon = tf.constant(0.0)
            if "content" in w:
                terms["photo_loss"] = losses.feature_l1(target_features[:n], out_features)
                total += w["content"] * terms["photo_loss"]
                recon += terms["photo_loss"]
            if "structure" in w:
                terms["superpixel_loss"] = losses.feature_l1(target_features[n:], out_features)
                total += w["structure"] * terms["superpixel_loss"]
                recon += terms["superpixel_loss"]
            terms["recon_loss"] = recon
        if "tv" in w:
            terms["tv_loss"] = losses.total_variation(out)
            total += w["tv"] * terms["tv_loss"]
        terms["g_loss_total"] = total
        return terms

    def _g_step(self, photo, cartoon):
        with tf.GradientTape() as tape:
            out = self.output(photo)
            terms = self.generator_losses(out, photo, cartoon)
        _apply(self.opt_g, tape, terms["g_loss_total"])
        return terms

    # -- D step

    def discriminator_losses(self, out, cartoon):
        """{scalar name: loss} of both discriminators for generator output `out`."""
        terms = {}
        total = tf.constant(0.0)
        if self.disc_blur is not None:
            real, fake = self._disc_logits(self.disc_blur, representations.surface(cartoon),
                                           representations.surface(out), need_real=True)
            terms["d_loss_blur"] = losses.lsgan_d_loss(real, fake)
            total += terms["d_loss_blur"]
        if self.disc_gray is not None:
            gray_fake, gray_cartoon = representations.texture(out, cartoon, rng=self.rng)
            real, fake = self._disc_logits(self.disc_gray, gray_cartoon, gray_fake,
                                           need_real=True)
            terms["d_loss_gray"] = losses.lsgan_d_loss(real, fake)
            total += terms["d_loss_gray"]
        terms["d_loss_total"] = total
        return terms

    def _d_step(self, photo, cartoon):
        out = tf.stop_gradient(self.output(photo))
        with tf.GradientTape() as tape:
            terms = self.discriminator_losses(out, cartoon)
        if self.opt_d is not None:
            _apply(self.opt_d, tape, terms["d_loss_total"])
        return terms

    def iteration(self, photo, cartoon):
        """G step, then D step with the updated generator; the losses of both."""
        terms = dict(self.g_step(photo, cartoon))
        terms.update(self.d_step(photo, cartoon))
        return terms

    def checkpoint_objects(self):
        objects = {"generator": self.generator, "optimizer_generator": self.opt_g,
                   "rng": self.rng}
        if self.disc_gray is not None:
            objects["disc_gray"] = self.disc_gray
        if self.disc_blur is not None:
            objects["disc_blur"] = self.disc_blur
        if self.opt_d is not None:
            objects["optimizer_discriminator"] = self.opt_d
        return objects


# ---------------------------------------------------------------------------- outputs

def to_uint8(batch):
    """[-1, 1] float -> uint8 by (x + 1) * 127.5, clipped, truncated."""
    return np.clip((np.asarray(batch) + 1.0) * 127.5, 0, 255).astype(np.uint8)


def image_grid(batch, columns=4, max_images=16):
    """Up to `max_images` images of a [N, H, W, 3] batch in rows of `columns` (the reference's
    4x4 grid at batch 16); missing cells are black. Returns uint8 BGR."""
    images = to_uint8(batch[:max_images])
    n, h, w, c = images.shape
    rows = math.ceil(n / columns)
    grid = np.zeros((rows * h, columns * w, c), np.uint8)
    for k in range(n):
        r, col = divmod(k, columns)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[k]
    return grid


class RunLog:
    """Lines to `<out>/log.txt` and to the console (through tqdm, so the bar stays intact)."""

    def __init__(self, path, echo=True):
        self.path = path
        self.echo = echo

    def __call__(self, line):
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        if self.echo:
            from tqdm import tqdm
            tqdm.write(line)


def _scalar_metadata():
    from tensorflow.core.framework import summary_pb2
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))


def write_scalar(name, value, step):
    """A TensorBoard scalar in the default summary writer, written the way TensorBoard's own
    `scalar` op writes it (a float32 tensor tagged with the 'scalars' plugin), so that logging
    does not need the tensorboard package (tf.summary.scalar does)."""
    tf.summary.write(name, tf.constant(value, tf.float32), step=step,
                     metadata=_scalar_metadata())


def first_nonfinite(values):
    """(name, value) of the first NaN or infinite entry of `values` ({name: float}), or None."""
    for name, value in values.items():
        if not math.isfinite(value):
            return name, value
    return None


def diverged(iteration, name, value, unconfirmed, last_good, ckpt_dir):
    """TrainingDiverged for loss `name` = `value` at `iteration`.

    unconfirmed: the checkpoint holding the weights this loss was computed with (saved after
    the previous iteration, or resumed from), or None. It is moved aside (see `_set_aside`),
    so that --resume, --init-from and --weights on the folder do not pick it up. last_good:
    the newest checkpoint whose weights gave a finite loss, or None.
    """
    moved = ""
    if last_good and not Path(last_good + ".index").is_file():
        last_good = f"none ({last_good} was removed to keep --keep checkpoints)"
    if unconfirmed:
        aside = set_aside(unconfirmed, ckpt_dir)
        moved = (f" Checkpoint {Path(unconfirmed).name} holds the weights that gave this loss; "
                 f"moved to {aside}.")
    return TrainingDiverged(
        f"iteration {iteration}: loss {name} is {value}; training stopped.{moved} "
        f"Last good checkpoint: {last_good or 'none (no checkpoint known good yet)'}")


# ---------------------------------------------------------------------------- the loop

def _prepare_out_dir(config):
    out = Path(config.out_dir)
    config_path = out / "config.json"
    ckpt_dir = out / "checkpoints"
    found = list_checkpoints(ckpt_dir)
    moved = None
    if config.resume:
        if not config_path.is_file() or not found:
            raise ConfigError(f"{out}: nothing to resume (no config.json or no checkpoint)")
        saved = config_from_json(config_path.read_text(encoding="utf-8"))
        if saved.command != config.command:
            raise ConfigError(f"{out}: a {saved.command} run cannot be resumed by {config.command}")
        diff = resume_mismatches(saved, config)
        if diff:
            raise ConfigError(f"{out}: --resume with settings that differ from the saved run: "
                              f"{', '.join(diff)} (see {config_path})")
        if Path(saved.out_dir).resolve() != out.resolve():
            moved = f"run folder moved: was {saved.out_dir}, now {config.out_dir}"
    elif found:
        raise ConfigError(f"{out}: already holds checkpoints; pass --resume to continue it or "
                          "choose another output folder")
    (out / "images").mkdir(parents=True, exist_ok=True)
    data_lib.atomic_write_text(config_path, config.to_json() + "\n")
    return out, ckpt_dir, found, moved


def build_trainer(config, vgg=None):
    """The trainer object of a config, models built after the seeds are set."""
    tf.keras.utils.set_random_seed(config.seed)
    if config.command == "pretrain":
        return Pretrainer(config)
    if vgg is None and config.vgg:
        from whitebox.vgg import VGG19Conv44
        vgg = VGG19Conv44.from_file(config.vgg, trust_pickle=config.trust_pickle)
    return AdversarialTrainer(config, vgg, superpixel_jobs=config.superpixel_jobs)


def run(config, vgg=None, echo=True, progress=True):
    """Train with `config` (PretrainConfig or TrainConfig); returns the trainer.

    Output folder: config.json, log.txt, train_log/ (TensorBoard), images/ (sample grids),
    checkpoints/ (tf.train.Checkpoint: generator, discriminators, both optimisers, iteration,
    colour-shift RNG; the batch draws depend only on seed and iteration).
    """
    from tqdm import tqdm

    config.validate()
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    out, ckpt_dir, found, moved = _prepare_out_dir(config)
    log = RunLog(out / "log.txt", echo=echo)
    if moved:
        log(moved)
    with_cartoons = config.command == "train"
    lists, use_face, note = data_lib.load_lists(config.data_lists, with_cartoons)
    if note:
        log(note)
    sampler = data_lib.BatchSampler(lists, config.batch_size, config.patch_size, config.seed,
                                    use_face, with_cartoons, config.face_every)

    trainer = build_trainer(config, vgg)
    iteration = tf.Variable(0, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(iteration=iteration, **trainer.checkpoint_objects())
    # The checkpoint whose weights have not yet given a finite loss, and the newest that has.
    unconfirmed = last_good = None
    if config.resume:
        unconfirmed = restore_newest(checkpoint, found, ckpt_dir, log)
        older = [p for p in found[found.index(unconfirmed) + 1:]
                 if Path(p + ".index").is_file()]
        last_good = older[0] if older else None
        log(f"resumed from {unconfirmed} at iteration {int(iteration.numpy())}")
    elif config.init_from:
        prefix = load_generator(trainer.generator, config.init_from)
        log(f"generator initialised from {prefix}")
    elif config.command == "train":
        log("warning: no --init-from: the generator starts from random weights, "
            "not from a pre-trained one as the reference does")
    # Created after the resume, which rewrites the state file the manager reads.
    manager = tf.train.CheckpointManager(checkpoint, str(ckpt_dir),
                                         max_to_keep=config.keep_checkpoints,
                                         checkpoint_name="ckpt")

    start = int(iteration.numpy())
    writer = tf.summary.create_file_writer(str(out / "train_log"))
    dataset = sampler.dataset(start, config.iterations)
    bar = tqdm(total=config.iterations, initial=start, disable=not progress,
               dynamic_ncols=True, desc=config.command)
    i = start - 1
    try:
        for batch in dataset:
            i = int(batch[0].numpy())
            terms = trainer.iteration(*batch[1:])
            values = {k: float(v) for k, v in terms.items()}
            bad = first_nonfinite(values)
            if bad:
                raise diverged(i, *bad, unconfirmed, last_good, ckpt_dir)
            if unconfirmed:
                last_good, unconfirmed = unconfirmed, None
            iteration.assign(i + 1)
            with writer.as_default(step=i):
                for name in SCALARS:
                    if name in values:
                        write_scalar(name, values[name], i)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()
                             if k in ("g_loss_total", "d_loss_total", "recon_loss")})
            if (i + 1) % config.print_every == 0:
                ordered = [k for k in SCALARS if k in values]
                log(f"iter {i}: " + ", ".join(f"{k} {values[k]:.6g}" for k in ordered))
            if (i + 1) % config.sample_every == 0:
                _write_samples(trainer, sampler, out / "images", i, use_face)
            if (i + 1) % config.save_every == 0 or i + 1 == config.iterations:
                path = manager.save(checkpoint_number=i + 1)
                unconfirmed = path
                writer.flush()
                log(f"iter {i}: checkpoint {path}")
    except tf.errors.OpError:
        if sampler.last_error is not None:
            raise sampler.last_error from None
        raise
    finally:
        bar.close()
        writer.flush()
    return trainer


def _write_samples(trainer, sampler, folder, i, use_face):
    """`<i>_<domain>_result.jpg` and `<i>_<domain>_photo.jpg` grids, as the reference names them."""
    for domain in (("face", "scenery") if use_face else ("scenery",)):
        photos, _ = sampler.sample_batch(i, domain)
        result = trainer.sample(tf.constant(photos)).numpy()
        write_atomic(folder / f"{i}_{domain}_result.jpg", image_grid(result))
        write_atomic(folder / f"{i}_{domain}_photo.jpg", image_grid(photos))
