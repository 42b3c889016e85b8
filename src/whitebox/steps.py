"""The training algorithm: TF1's Adam, the pre-training step, the adversarial G and D steps.

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

Losses are returned as {TensorBoard name: scalar}, under the reference's names.
"""
import functools

import tensorflow as tf

from whitebox import losses, representations
from whitebox.config import TERM_SCALARS, ConfigError
from whitebox.guided_filter import guided_filter
from whitebox.network import Discriminator, Generator

VGG_TERMS = ("content", "structure")


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
    Keras's Adam uses the same formula, with beta^t from `pow` and a default epsilon of 1e-7;
    this class exists so the slots are created up front, checkpoint as plain variables and
    restore before the first step.
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

    @classmethod
    def from_config(cls, variables, config, name):
        """An Adam on `variables` with the config's lr, beta1, beta2 and adam_epsilon."""
        return cls(variables, config.lr, config.beta1, config.beta2, config.adam_epsilon, name)

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

    def minimize(self, tape, loss):
        """One update along the gradient of `loss` recorded on `tape`."""
        grads = tape.gradient(loss, self.targets)
        missing = [v.name for v, g in zip(self.targets, grads) if g is None]
        if missing:
            raise ValueError(f"no gradient for {', '.join(missing)}")
        self.apply(grads)


class PretrainStep:
    """`pretrain.py`: one Adam step on mean|P - G(P)| (raw generator, no guided filter)."""

    def __init__(self, config):
        self.generator = Generator()
        self.opt_g = Adam.from_config(self.generator.trainable_variables, config,
                                      "adam_generator")
        self.step = tf.function(self._step)
        self.sample = tf.function(self.generator.__call__)

    def _step(self, photo):
        with tf.GradientTape() as tape:
            loss = losses.l1(photo, self.generator(photo))
        self.opt_g.minimize(tape, loss)
        return {"recon_loss": loss}

    def iteration(self, photo):
        return self.step(photo)

    def checkpoint_objects(self):
        return {"generator": self.generator, "optimizer_generator": self.opt_g}


class AdversarialStep:
    """`train.py`: the G step and the D step (see the module docstring).

    config: TrainConfig. vgg: a callable BGR [-1, 1] -> conv4_4 features (vgg.VGG19Conv44),
    needed when the content or structure term is on. Terms switched off are not computed; a
    discriminator whose term is off is neither built nor trained.
    """

    def __init__(self, config, vgg=None):
        self.config = config
        self.weights = config.active_weights()
        self.vgg_terms = [t for t in VGG_TERMS if t in self.weights]
        if self.vgg_terms and vgg is None:
            raise ConfigError("the content and structure terms need a VGG19 (vgg=...)")
        self.vgg = vgg
        self.generator = Generator()
        self.disc_gray = (Discriminator(1, config.disc_channel, "disc_gray", config.sn_mode)
                          if "texture" in self.weights else None)
        self.disc_blur = (Discriminator(3, config.disc_channel, "disc_blur", config.sn_mode)
                          if "surface" in self.weights else None)
        self.opt_g = Adam.from_config(self.generator.trainable_variables, config,
                                      "adam_generator")
        disc_vars = [v for d in (self.disc_gray, self.disc_blur) if d is not None
                     for v in d.trainable_variables]
        self.opt_d = (Adam.from_config(disc_vars, config, "adam_discriminator")
                      if disc_vars else None)
        # Colour-shift weights are drawn from this generator; its state is checkpointed.
        self.rng = tf.random.Generator.from_seed(config.seed)
        self.g_step = tf.function(self._g_step)
        self.d_step = tf.function(self._d_step)
        self.sample = tf.function(self.output)

    def output(self, photo):
        """gf(P, G(P), r=1, eps=1e-2) with the F_st switch on (the code), G(P) with it off."""
        raw = self.generator(photo)
        if self.config.fst_in_losses:
            return guided_filter(photo, raw, self.config.fst_radius, self.config.fst_eps)
        return raw

    # -- G step

    def generator_losses(self, out, photo, cartoon):
        """The generator objective for generator output `out`: each active term under its
        TensorBoard name, recon_loss (content + structure) and g_loss_total, their weighted
        sum."""
        vgg_l1 = functools.cache(lambda: self._vgg_l1(out, photo))   # one pass for both terms
        term = {   # computed and summed in this order
            "surface": lambda: losses.lsgan_g_loss(
                self.disc_blur.fake_logits(representations.surface(out))),
            "texture": lambda: losses.lsgan_g_loss(
                self.disc_gray.fake_logits(representations.texture(out, cartoon, self.rng)[0])),
            "content": lambda: vgg_l1()["content"],
            "structure": lambda: vgg_l1()["structure"],
            "tv": lambda: losses.total_variation(out),
        }
        active = [t for t in term if t in self.weights]
        value = {t: term[t]() for t in active}
        scalars = {TERM_SCALARS[t]: value[t] for t in active}
        if self.vgg_terms:
            scalars["recon_loss"] = sum(value[t] for t in self.vgg_terms)
        scalars["g_loss_total"] = sum((self.weights[t] * value[t] for t in active),
                                      tf.constant(0.0))
        return scalars

    def _vgg_l1(self, out, photo):
        """{"content": L1 of conv4_4 features to the photo's, and with the structure term on,
        "structure": to the superpixel image's}. The targets need no gradient: one batched
        pass on them, then the output's own pass."""
        targets = {"content": photo}
        if "structure" in self.weights:
            targets["structure"] = representations.structure(
                out, self.config.superpixel, self.config.superpixel_jobs or None,
                self.config.superpixel_segments)
        features = tf.stop_gradient(self.vgg(tf.concat(list(targets.values()), axis=0)))
        out_features = self.vgg(out)
        return {t: losses.feature_l1(f, out_features)
                for t, f in zip(targets, tf.split(features, len(targets)))}

    def _g_step(self, photo, cartoon):
        with tf.GradientTape() as tape:
            out = self.output(photo)
            scalars = self.generator_losses(out, photo, cartoon)
        self.opt_g.minimize(tape, scalars["g_loss_total"])
        return scalars

    # -- D step

    def discriminator_losses(self, out, cartoon):
        """d_loss_blur, d_loss_gray (of the discriminators that are on) and d_loss_total, for
        generator output `out`."""
        scalars = {}
        if self.disc_blur is not None:
            real, fake = self.disc_blur.logits(representations.surface(cartoon),
                                               representations.surface(out))
            scalars["d_loss_blur"] = losses.lsgan_d_loss(real, fake)
        if self.disc_gray is not None:
            gray_out, gray_cartoon = representations.texture(out, cartoon, self.rng)
            real, fake = self.disc_gray.logits(gray_cartoon, gray_out)
            scalars["d_loss_gray"] = losses.lsgan_d_loss(real, fake)
        scalars["d_loss_total"] = sum(scalars.values(), tf.constant(0.0))
        return scalars

    def _d_step(self, photo, cartoon):
        out = tf.stop_gradient(self.output(photo))
        with tf.GradientTape() as tape:
            scalars = self.discriminator_losses(out, cartoon)
        if self.opt_d is not None:
            self.opt_d.minimize(tape, scalars["d_loss_total"])
        return scalars

    def iteration(self, photo, cartoon):
        """G step, then D step with the updated generator; the losses of both."""
        scalars = dict(self.g_step(photo, cartoon))
        scalars.update(self.d_step(photo, cartoon))
        return scalars

    def checkpoint_objects(self):
        objects = {"generator": self.generator, "optimizer_generator": self.opt_g,
                   "rng": self.rng, "disc_gray": self.disc_gray, "disc_blur": self.disc_blur,
                   "optimizer_discriminator": self.opt_d}
        return {name: obj for name, obj in objects.items() if obj is not None}
