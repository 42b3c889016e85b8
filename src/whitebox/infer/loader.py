"""From weights and options to the cartoonizer that every entry point runs: the runner of the
chosen runtime (`make_runner`), the Cartoonizer around it (`make_cartoonizer`), and the one
recipe weights -> Cartoonizer (`load_cartoonizer`), which `Cartoonizer.from_pretrained`, the
Python API, wraps.
"""

from whitebox.base import notice
from whitebox.base.errors import UsageError, one_line
from whitebox.infer import inference
from whitebox.infer.inference import TFRunner
from whitebox.infer.options import InferenceOptions
from whitebox.infer.runtimes import (
    CONVERTING,
    checkpoint_digest,
    onnxruntime_runner,
    openvino_runner,
)
from whitebox.infer.weights import load_generator_weights
from whitebox.model.precision import choose


class Cartoonizer(inference.Cartoonizer):
    """The cartoonizer the package hands out (`whitebox.Cartoonizer`): an
    inference.Cartoonizer that `from_pretrained` builds as cartoonize.py does.

        cartoonizer = Cartoonizer.from_pretrained(runtime="auto")
        cartoon = cartoonizer(image)  # HxWx3 uint8 BGR -> uint8 BGR, resized and cropped
    """

    @classmethod
    def from_pretrained(cls, weights=None, offline=False, warn=None, **options):
        """The cartoonizer cartoonize.py runs: the checkpoint folder or prefix `weights` (None:
        as cartoonize.py finds one, never downloaded when `offline`), with InferenceOptions'
        fields as keywords (runtime='auto', precision='fp32', max_short_side=720, ...). `warn`
        gets the one-line notices (default: the 'whitebox' logger). Raises WeightsError,
        UsageError (bad options, a runtime not installed)."""
        options = InferenceOptions(**options)
        if options.problem():
            raise UsageError(options.problem())
        return load_cartoonizer(weights, options, offline, warn or notice)


def make_runner(runtime, generator, checkpoint, use_guided_filter=True, precision="fp32",
                jit_compile=False, warn=notice):
    """The runner of `runtime` (settled by `precision.choose`) for `generator`, whose
    checkpoint has the `checkpoint_digest` `checkpoint`. `jit_compile` (XLA): TF only."""
    if runtime == "tf":
        return TFRunner(generator, use_guided_filter, precision, jit_compile=jit_compile)
    make = openvino_runner if runtime == "openvino" else onnxruntime_runner
    return make(generator, checkpoint, use_guided_filter, precision, warn)


def make_cartoonizer(generator, prefix, options=InferenceOptions(), warn=notice):
    """The Cartoonizer of `options` for `generator`, loaded from the checkpoint
    `prefix`, with the runtime and precision `precision.choose` settles. A converter that
    fails leaves TF running, with one line through `warn`. Raises RuntimeUnavailable."""
    runtime, precision = choose(options.runtime, options.precision, warn)
    if options.xla and runtime != "tf":
        warn(f"--xla applies to --runtime tf only; {runtime} runs without it")

    def runner(checkpoint):
        return make_runner(runtime, generator, checkpoint, options.guided_filter, precision,
                           options.xla, warn)
    try:
        run = runner(checkpoint_digest(prefix) if runtime != "tf" else None)
    except Exception as err:  # a converter or a cache folder failing in its own way
        if runtime == "tf":
            raise
        reason = f"{type(err).__name__}: {one_line(err)}"
        failed, (runtime, precision) = runtime, choose("tf", options.precision, warn)
        warn(f"{failed} failed ({reason}); using runtime {runtime}, precision {precision}")
        run = runner(None)
    return Cartoonizer(max_short_side=options.max_short_side, tile_core=options.tile_core,
                       tile_margin=options.tile_margin, precision=precision, runner=run,
                       runtime=runtime)


def load_cartoonizer(weights=None, options=InferenceOptions(), offline=False,
                     warn=notice, progress=True):
    """The cartoonizer every entry point builds, so that the same options give the same bytes:
    `make_cartoonizer` of `weights.load_generator_weights`. Without `progress`, `warn` is spared the
    news of a first conversion. Raises WeightsError and precision.RuntimeUnavailable."""
    say = warn if progress else lambda line: line.startswith(CONVERTING) or warn(line)
    return make_cartoonizer(*load_generator_weights(weights, offline, progress, warn), options,
                            say)
