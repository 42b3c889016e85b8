"""The training algorithm: TF1's Adam, the pre-training step, the adversarial G and D steps.

One adversarial iteration (REFERENCE.md section 6), with P photos and C cartoons:

  G step: out = gf(P, G(P), r=1, eps=1e-2) (or the raw G(P) with the F_st switch off);
          S = superpixel(stop_gradient(out)); the generator losses on out; one Adam step on G.
  D step: out' = the same function of P with the UPDATED generator; the discriminator losses
          on out' and C; one Adam step on both discriminators.

The reference runs the generator three times per iteration (for the superpixel step, the G
step, the D step) and recomputes the generator losses in its D step for the summaries. Here
the G step's one forward pass feeds both the superpixel op and the losses (the same weights),
and the logged generator losses are the G step's; the updates are the same. Losses come as
{TensorBoard name: scalar}, under the reference's names.

The steps run on the replicas of a tf.distribute strategy (distribute.py; TF's default
strategy: one device), each on its share of the global batch: a replica scales its (mean)
losses by its share (local batch / global batch), the gradients are summed over the replicas
and Adam applies the sum once, so the summed losses are the global batch's. The colour shift
is drawn once per step, outside the replicas.

With precision bf16 or fp16 the generator and the discriminators compute in that dtype
(network.run_in); weights, Adam's slots, the guided filters, the colour shift, the superpixel
input, the losses and the spectral norm's power iteration stay float32; VGG computes in
config.vgg_dtype_name(). fp16 scales the losses dynamically (loss_scale.py), one scale per
optimiser.

With config.xla the step bodies are compiled with XLA. The superpixel numpy_function cannot be,
so with the structure term on the G step is what the reference runs: a generator pass
(`sample`), the superpixel step on its output, then the compiled update with that target fed
in (one more generator pass per iteration).
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

    def apply(self, gradients, finite=None):
        """One update of every target variable with `gradients` (same order, no None).

        finite: None, or a boolean scalar; where it is False every variable of this optimiser
        and every target keeps its value (a skipped step)."""
        if finite is None:
            def put(var, value):
                var.assign(value)
        else:
            def put(var, value):
                var.assign(tf.where(finite, value, var))
        lr_t = self.lr * tf.sqrt(1.0 - self.beta2_power) / (1.0 - self.beta1_power)
        for g, var, m, v in zip(gradients, self.targets, self.m, self.v):
            put(m, m + (g - m) * (1.0 - self.beta1))
            put(v, v + (tf.square(g) - v) * (1.0 - self.beta2))
            put(var, var - lr_t * m / (tf.sqrt(v) + self.epsilon))
        put(self.beta1_power, self.beta1_power * self.beta1)
        put(self.beta2_power, self.beta2_power * self.beta2)
        put(self.step, self.step + 1)

    def gradients(self, tape, loss, scale):
        """The gradients of `loss` times `scale` (a float or scalar tensor) recorded on `tape`
        for every target (none may be None)."""
        grads = tape.gradient(loss, self.targets, output_gradients=tf.cast(scale, loss.dtype))
        missing = [v.name for v, g in zip(self.targets, grads) if g is None]
        if missing:
            raise ValueError(f"no gradient for {', '.join(missing)}")
        return grads


class _Steps:
    """What the pre-training and adversarial steps share: how a step body runs.

    A body takes (*batch, shift) and returns {name: scalar loss}; it calls `self._update`
    for each optimiser. A step (a tf.function) splits the batch over the replicas, draws the
    colour shift, runs the body on each replica and sums their losses. With xla the body is
    compiled with XLA (jit_compile); the colour shift is still drawn outside it.
    """

    def __init__(self, config, strategy, xla=False):
        self.config = config
        precision = config.precision
        self.strategy = strategy or tf.distribute.get_strategy()
        self.share = 1.0 / self.strategy.num_replicas_in_sync   # local batch / global batch
        self.dtype = DTYPES[precision]       # the networks' compute dtype
        self.fp16 = precision == "fp16"
        self.xla = xla

    def _loss_scale(self, name):
        """A DynamicLossScale for fp16, else None (create it inside the strategy's scope)."""
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
        """One step of `opt` along the gradient of loss * share summed over the replicas.
        With `loss_scale` (fp16) the backward pass runs on loss * scale, the gradients are
        divided by it, and a step with a non-finite gradient is skipped (see loss_scale.py)."""
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
        """{name in the checkpoint: object} of what the step trains and keeps."""
        return {name: getattr(self, attr) for name, attr in self.CHECKPOINTED.items()
                if getattr(self, attr, None) is not None}

    def _scaled(self, scalars):
        """The losses scaled by the share, so that their sum over the replicas is the global
        batch's."""
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
    """`train.py`: the G step and the D step (see the module docstring).

    config: TrainConfig. vgg: a callable (BGR [-1, 1], compute dtype) -> float32 conv4_4
    features (vgg.VGG19Conv44), needed when the content or structure term is on. Terms
    switched off are not computed; a discriminator whose term is off is neither built nor
    trained. strategy: a tf.distribute strategy (None: the default strategy).
    """
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
        # Colour-shift weights are drawn from this generator; its state is checkpointed. It is
        # an ordinary variable, used only outside the replicas (one draw per step for all).
        self.rng = tf.random.Generator.from_seed(config.seed)
        with distribute.scope(self.strategy):
            self.generator = Generator()
            self.disc_gray = (Discriminator(1, config.disc_channel, "disc_gray", config.sn_mode,
                                            self.dtype)
                              if "texture" in self.weights else None)
            self.disc_blur = (Discriminator(3, config.disc_channel, "disc_blur", config.sn_mode,
                                            self.dtype)
                              if "surface" in self.weights else None)
            self.opt_g = Adam.from_config(self.generator.trainable_variables, config,
                                          "adam_generator")
            disc_vars = [v for d in (self.disc_gray, self.disc_blur) if d is not None
                         for v in d.trainable_variables]
            self.opt_d = (Adam.from_config(disc_vars, config, "adam_discriminator")
                          if disc_vars else None)
            self.scale_g = self._loss_scale("loss_scale_generator")
            self.scale_d = self._loss_scale("loss_scale_discriminator") if disc_vars else None
        self.sample = tf.function(self.output, jit_compile=config.xla)
        self.g_step = self._g_step_fed() if self._feeds_target() else self._step(self._g_body)
        self.d_step = self._step(self._d_body)

    def _feeds_target(self):
        """Whether the superpixel target is computed before the G step and fed to it: with
        XLA and the structure term on, as the numpy_function cannot run inside XLA."""
        return self.xla and "structure" in self.weights

    def _g_step_fed(self):
        """The G step as the reference runs it: a generator pass (`sample`), the superpixel
        step on its output, then the update with that target as an input."""
        update = self._step(self._g_body_fed)

        def g_step(photo, cartoon):
            target = representations.structure(
                self.sample(photo), self.config.superpixel,
                self.config.superpixel_jobs or None, self.config.superpixel_segments)
            return update(photo, cartoon, target)
        return g_step

    def _draw_shift(self):
        """The step's colour-shift weights [3] (B, G, R), or None with the texture term off."""
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
        """The generator objective for generator output `out`: each active term under its
        TensorBoard name, recon_loss (content + structure) and g_loss_total, their weighted
        sum. shift: the colour-shift weights of the step (drawn from the run's RNG if None).
        target: the structure term's superpixel image, or None to compute it from `out`."""
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
        """{"content": L1 of conv4_4 features to the photo's, and with the structure term on,
        "structure": to the superpixel image's (`target`, or computed from `out` if None)}.
        The targets need no gradient: one batched pass on them, then the output's own pass.
        VGG computes in self.vgg_dtype; its features and the losses are float32."""
        targets = {"content": photo}
        if "structure" in self.weights:
            targets["structure"] = target if target is not None else representations.structure(
                out, self.config.superpixel, self.config.superpixel_jobs or None,
                self.config.superpixel_segments)
        features = tf.stop_gradient(self.vgg(tf.concat(list(targets.values()), 0), self.vgg_dtype))
        out_features = self.vgg(out, self.vgg_dtype)
        return {t: losses.feature_l1(f, out_features)
                for t, f in zip(targets, tf.split(features, len(targets)))}

    def _g_body(self, photo, cartoon, shift):
        return self._g_body_fed(photo, cartoon, None, shift)

    def _g_body_fed(self, photo, cartoon, target, shift):
        """The G step's body; target: the superpixel image fed from outside, or None to
        compute it inside from this pass's output."""
        with tf.GradientTape() as tape:
            out = self.output(photo)
            scalars = self.generator_losses(out, photo, cartoon, shift, target)
        self._update(self.opt_g, tape, scalars["g_loss_total"], self.scale_g)
        return self._scaled(scalars)

    # -- D step

    def discriminator_losses(self, out, cartoon, shift=None):
        """d_loss_blur, d_loss_gray (of the discriminators that are on) and d_loss_total, for
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
        """G step, then D step with the updated generator; the losses of both."""
        scalars = dict(self.g_step(photo, cartoon))
        scalars.update(self.d_step(photo, cartoon))
        return scalars

