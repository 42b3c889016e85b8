"""The training algorithm: TF1's Adam, the pre-training step, the adversarial G and D steps.

One adversarial iteration (REFERENCE.md section 6), with P photos and C cartoons:

  G step: out = gf(P, G(P), r=1, eps=1e-2) (or the raw G(P) with the F_st switch off);
          S = superpixel(stop_gradient(out)); the generator losses on out; one Adam step on G.
  D step: out' = the same function of P with the UPDATED generator; the discriminator losses
          on out' and C; one Adam step on both discriminators.

The reference runs the generator three times per iteration and recomputes the generator losses
in its D step; here the G step's one pass feeds the superpixel op and the losses (the same
updates), and those are logged. Each replica scales its mean losses by its share of the batch;
the gradients are summed over the replicas and applied once. The colour shift is drawn once per
step, outside the replicas.

With bf16 or fp16 only the generator and discriminators compute in that dtype (network.run_in;
docs/TRAINING.md, "Mixed-precision training"); fp16 has a loss scale per optimiser.
"""
import functools

import tensorflow as tf

from whitebox.model import losses, representations
from whitebox.model.guided_filter import guided_filter
from whitebox.model.network import Discriminator, Generator, run_in
from whitebox.model.precision import DTYPES
from whitebox.train import distribute
from whitebox.train.config import TERM_SCALARS, ConfigError
from whitebox.train.loss_scale import DynamicLossScale, all_finite

VGG_TERMS = ("content", "structure")


class _Untracked:
    """A holder whose contents tf.Module and checkpoints do not track."""

    def __init__(self, value):
        self.value = value


class Adam(tf.Module):
    """Adam exactly as TF1's `tf.train.AdamOptimizer` updates (the "epsilon hat" form):

        lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
        m = m + (g - m) * (1 - beta1);   v = v + (g^2 - v) * (1 - beta2)
        theta = theta - lr_t * m / (sqrt(v) + epsilon)

    with beta^t kept as running products like TF1 (Keras uses `pow`); the slots exist up front,
    so they restore before the first step.
    """

    def __init__(self, variables, lr=2e-4, beta1=0.5, beta2=0.99, epsilon=1e-8, name="adam"):
        super().__init__(name=name)
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        # Untracked: the targets are checkpointed under the networks' names.
        self._holder = _Untracked(list(variables))
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.targets]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.targets]
        self.beta1_power = tf.Variable(beta1, dtype=tf.float32, trainable=False)
        self.beta2_power = tf.Variable(beta2, dtype=tf.float32, trainable=False)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)

    @classmethod
    def from_config(cls, variables, config, name):
        return cls(variables, config.lr, config.beta1, config.beta2, config.adam_epsilon, name)

    @property
    def targets(self):
        return self._holder.value

    def apply(self, gradients, finite=None):
        """One update of every target with `gradients` (same order); where `finite` (a boolean
        scalar, or None) is False, every variable keeps its value (a skipped step)."""
        def put(var, value):
            var.assign(value if finite is None else tf.where(finite, value, var))
        lr_t = self.lr * tf.sqrt(1.0 - self.beta2_power) / (1.0 - self.beta1_power)
        for g, var, m, v in zip(gradients, self.targets, self.m, self.v):
            put(m, m + (g - m) * (1.0 - self.beta1))
            put(v, v + (tf.square(g) - v) * (1.0 - self.beta2))
            put(var, var - lr_t * m / (tf.sqrt(v) + self.epsilon))
        put(self.beta1_power, self.beta1_power * self.beta1)
        put(self.beta2_power, self.beta2_power * self.beta2)
        put(self.step, self.step + 1)

    def gradients(self, tape, loss, scale):
        """The gradients of `loss` * `scale` on `tape` for every target (none may be None)."""
        grads = tape.gradient(loss, self.targets, output_gradients=tf.cast(scale, loss.dtype))
        missing = [v.name for v, g in zip(self.targets, grads) if g is None]
        if missing:
            raise ValueError(f"no gradient for {', '.join(missing)}")
        return grads


class _Steps:
    """How a step body runs: a body takes (*batch, shift), calls `_update` per optimiser and
    returns {name: scalar loss}; a step (a tf.function) splits the batch over the replicas,
    draws the colour shift, runs the body on each replica and sums their losses."""

    def __init__(self, config, strategy, xla=False):
        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.share = 1.0 / self.strategy.num_replicas_in_sync   # local batch / global batch
        self.dtype = DTYPES[config.precision]       # the networks' compute dtype
        self.fp16 = config.precision == "fp16"
        self.xla = xla

    def _loss_scale(self, name):
        """A DynamicLossScale for fp16, else None (create it in the strategy's scope)."""
        return DynamicLossScale(name=name) if self.fp16 else None

    def _draw_shift(self):
        return None

    def _step(self, body):
        strategy = self.strategy
        if self.xla:       # the body compiled; the colour shift is drawn outside it
            body = tf.function(body, jit_compile=True)

        @tf.function
        def cross_replica(*batch):
            per_replica = strategy.run(body, args=(*batch, self._draw_shift()))
            return {k: strategy.reduce(distribute.SUM, v, axis=None)
                    for k, v in per_replica.items()}

        return lambda *batch: cross_replica(*distribute.split_batch(strategy, *batch))

    def _update(self, opt, tape, loss, loss_scale=None):
        """One step of `opt` along the gradient of loss * share summed over the replicas, scaled
        by `loss_scale` (fp16) as loss_scale.py says."""
        if loss_scale is None:
            opt.apply(distribute.all_reduce_sum(opt.gradients(tape, loss, self.share)))
            return
        scale = tf.identity(loss_scale.scale)
        grads = distribute.all_reduce_sum(opt.gradients(tape, loss, scale * self.share))
        grads = [g / scale for g in grads]
        finite = all_finite(grads)
        opt.apply(grads, finite)
        loss_scale.update(finite)

    def checkpoint_objects(self):
        """{name in the checkpoint: object}."""
        return {name: getattr(self, attr) for name, attr in self.CHECKPOINTED.items()
                if getattr(self, attr, None) is not None}

    def _scaled(self, scalars):
        """The losses times the share: their sum over the replicas is the global batch's."""
        return {k: v * self.share for k, v in scalars.items()}


class PretrainStep(_Steps):
    """`pretrain.py`: one Adam step on mean|P - G(P)| (raw generator, no guided filter)."""
    CHECKPOINTED = {"generator": "generator", "optimizer_generator": "opt_g",
                    "loss_scale_generator": "scale_g"}

    def __init__(self, config, strategy=None):
        super().__init__(config, strategy)
        with distribute.scope(self.strategy):
            self.generator = Generator()
            self.opt_g = Adam.from_config(self.generator.trainable_variables, config,
                                          "adam_generator")
            self.scale_g = self._loss_scale("loss_scale_generator")
        self.step = self._step(self._body)
        self.sample = tf.function(lambda photo: run_in(self.dtype, self.generator, photo))

    def _body(self, photo, shift):
        with tf.GradientTape() as tape:
            loss = losses.l1(photo, run_in(self.dtype, self.generator, photo))
        self._update(self.opt_g, tape, loss, self.scale_g)
        return self._scaled({"recon_loss": loss})

    def iteration(self, photo):
        return self.step(photo)


class AdversarialStep(_Steps):
    """`train.py`: the G step and the D step; vgg (vgg.VGG19Conv44) for the content and
    structure terms. Terms switched off are not computed, nor their discriminators built."""
    CHECKPOINTED = {**PretrainStep.CHECKPOINTED, "rng": "rng", "disc_gray": "disc_gray",
                    "disc_blur": "disc_blur", "optimizer_discriminator": "opt_d",
                    "loss_scale_discriminator": "scale_d"}

    def __init__(self, config, vgg=None, strategy=None):
        super().__init__(config, strategy, config.xla)
        self.vgg_dtype = DTYPES[config.vgg_dtype_name()]
        self.weights = config.active_weights()
        self.vgg_terms = [t for t in VGG_TERMS if t in self.weights]
        if self.vgg_terms and vgg is None:
            raise ConfigError("the content and structure terms need a VGG19 (vgg=...)")
        self.vgg = vgg
        # The colour shift's generator, checkpointed; used only outside the replicas.
        self.rng = tf.random.Generator.from_seed(config.seed)
        with distribute.scope(self.strategy):
            self.generator = Generator()
            self.disc_gray, self.disc_blur = (
                Discriminator(c, config.disc_channel, name, config.sn_mode, self.dtype)
                if term in self.weights else None
                for c, name, term in ((1, "disc_gray", "texture"), (3, "disc_blur", "surface")))
            self.opt_g = Adam.from_config(self.generator.trainable_variables, config,
                                          "adam_generator")
            disc_vars = [v for d in (self.disc_gray, self.disc_blur) if d is not None
                         for v in d.trainable_variables]
            self.opt_d = (Adam.from_config(disc_vars, config, "adam_discriminator")
                          if disc_vars else None)
            self.scale_g = self._loss_scale("loss_scale_generator")
            self.scale_d = self._loss_scale("loss_scale_discriminator") if disc_vars else None
        self.sample = tf.function(self.output, jit_compile=config.xla)
        # The superpixel numpy_function cannot run inside XLA: its target is then fed in.
        fed = self.xla and "structure" in self.weights
        self.g_step = self._g_step_fed() if fed else self._step(self._g_body)
        self.d_step = self._step(self._d_body)

    def _g_step_fed(self):
        """The G step as the reference runs it: `sample`, the superpixel step on its output, then
        the update with that target fed in."""
        update = self._step(self._g_body_fed)
        return lambda photo, cartoon: update(photo, cartoon, self._structure(self.sample(photo)))

    def _structure(self, out):
        config = self.config
        return representations.structure(out, config.superpixel, config.superpixel_jobs or None,
                                         config.superpixel_segments)

    def _draw_shift(self):
        """The step's colour-shift weights, or None with the texture term off."""
        if self.disc_gray is None:
            return None
        return representations.draw_color_shift_weights(self.rng)

    def output(self, photo):
        """gf(P, G(P), r=1, eps=1e-2) with the F_st switch on (the code), G(P) with it off."""
        raw = run_in(self.dtype, self.generator, photo)
        if self.config.fst_in_losses:
            return guided_filter(photo, raw, self.config.fst_radius, self.config.fst_eps)
        return raw

    # -- G step

    def generator_losses(self, out, photo, cartoon, shift=None, target=None):
        """Each active term of generator output `out` by its TensorBoard name, recon_loss and
        g_loss_total; shift: the colour shift (None: drawn); target: the superpixel image."""
        vgg_l1 = functools.cache(lambda: self._vgg_l1(out, photo, target))   # one pass for both
        term = {   # computed and summed in this order
            "surface": lambda: losses.lsgan_g_loss(
                self.disc_blur.fake_logits(representations.surface(out))),
            "texture": lambda: losses.lsgan_g_loss(
                self.disc_gray.fake_logits(representations.texture(out, cartoon, self.rng, shift)[0])),
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

    def _vgg_l1(self, out, photo, target=None):
        """{"content": L1 of conv4_4 features to the photo's, "structure" (when on): to the
        superpixel image's}. One batched pass on the targets (no gradient), then out's own."""
        targets = {"content": photo}
        if "structure" in self.weights:
            targets["structure"] = self._structure(out) if target is None else target
        features = tf.stop_gradient(self.vgg(tf.concat(list(targets.values()), 0), self.vgg_dtype))
        out_features = self.vgg(out, self.vgg_dtype)
        return {t: losses.feature_l1(f, out_features)
                for t, f in zip(targets, tf.split(features, len(targets)))}

    def _g_body(self, photo, cartoon, shift):
        return self._g_body_fed(photo, cartoon, None, shift)

    def _g_body_fed(self, photo, cartoon, target, shift):
        """The G step's body; target: the superpixel image fed in, or None."""
        with tf.GradientTape() as tape:
            out = self.output(photo)
            scalars = self.generator_losses(out, photo, cartoon, shift, target)
        self._update(self.opt_g, tape, scalars["g_loss_total"], self.scale_g)
        return self._scaled(scalars)

    # -- D step

    def discriminator_losses(self, out, cartoon, shift=None):
        """d_loss_blur, d_loss_gray (of the discriminators that are on) and d_loss_total of
        generator output `out`; shift as in `generator_losses`."""
        scalars = {}
        if self.disc_blur is not None:
            real, fake = self.disc_blur.logits(representations.surface(cartoon),
                                               representations.surface(out))
            scalars["d_loss_blur"] = losses.lsgan_d_loss(real, fake)
        if self.disc_gray is not None:
            gray_out, gray_cartoon = representations.texture(out, cartoon, self.rng, shift)
            real, fake = self.disc_gray.logits(gray_cartoon, gray_out)
            scalars["d_loss_gray"] = losses.lsgan_d_loss(real, fake)
        scalars["d_loss_total"] = sum(scalars.values(), tf.constant(0.0))
        return scalars

    def _d_body(self, photo, cartoon, shift):
        out = tf.stop_gradient(self.output(photo))
        with tf.GradientTape() as tape:
            scalars = self.discriminator_losses(out, cartoon, shift)
        if self.opt_d is not None:
            self._update(self.opt_d, tape, scalars["d_loss_total"], self.scale_d)
        return self._scaled(scalars)

    def iteration(self, photo, cartoon):
        """G step, then D step; the losses of both."""
        scalars = dict(self.g_step(photo, cartoon))
        scalars.update(self.d_step(photo, cartoon))
        return scalars

