"""Running the cartoonizer's network with OpenVINO or ONNX Runtime (docs/RUNTIMES.md);
`loader.make_runner` picks these or TensorFlow's `inference.TFRunner`.

Every runtime runs `inference.cartoon_network`. A runner is a callable float32 [N, H, W, 3]
BGR in [-1, 1] (H, W multiples of 4) -> float32 [N, H, W, 3] numpy array;
`inference.Cartoonizer(runner=...)` does everything around it.

OpenVINO and ONNX Runtime run a model converted once (N, H, W free) and cached under
`cache_root()/<runtime>/<cache_key>/`: written in a locked temporary folder, renamed into
place, with a manifest of sha256s; an entry that fails it or fails to load is converted again.
OpenVINO runs the generator in the requested precision (int8: quantized by NNCF), then the
guided filter in float32; ONNX Runtime runs float32 only.
"""
import contextlib
import glob
import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from whitebox.base import notice
from whitebox.base.errors import one_line
from whitebox.base.files import atomic_folder, home_dir, sha256_file, sweep
from whitebox.base.image_io import to_unit_range
from whitebox.infer.export import onnx_bytes
from whitebox.infer.inference import cartoon_network, resize_crop
from whitebox.infer.options import DEFAULT_OPSET
from whitebox.infer.samples import SAMPLE_PHOTOS, sample_photo

# Bumped when the layout of a cache entry changes.
CACHE_FORMAT = 1
MANIFEST = "manifest.json"
# The start of `cached`'s line before a conversion: news, not a warning (--quiet drops it).
CONVERTING = "converting the network once into"


def checkpoint_digest(prefix):
    """sha256 (hex) of a checkpoint's .index and .data-* files, names and contents."""
    prefix = str(prefix)
    digest = hashlib.sha256()
    for path in [prefix + ".index", *sorted(glob.glob(glob.escape(prefix) + ".data-*"))]:
        digest.update(Path(path).name[len(Path(prefix).name):].encode() + b"\0")
        sha256_file(path, digest)
    return digest.hexdigest()


def converter_version(runtime, precision="fp32"):
    """The versions of what converts and runs `runtime`'s model in `precision` (for int8 also
    the quantizer and the calibration photos), as one string."""
    if runtime == "openvino":
        import openvino
        version = f"openvino {openvino.__version__}; tensorflow {tf.__version__}"
        if precision == "int8":
            import nncf
            import skimage
            version += (f"; nncf {nncf.__version__} mixed; calibration scikit-image "
                        f"{skimage.__version__} {','.join(SAMPLE_PHOTOS)}")
        return version
    import onnxruntime
    import tf2onnx
    return (f"tf2onnx {tf2onnx.__version__} opset {DEFAULT_OPSET}; onnxruntime "
            f"{onnxruntime.__version__}; tensorflow {tf.__version__}")


def cache_key(checkpoint, runtime, use_guided_filter, precision):
    """(key, fields): the cache entry's name (hex) and what it hashes: the checkpoint's
    `checkpoint_digest`, the runtime, the converters' versions, the filter and precision."""
    fields = {"format": CACHE_FORMAT, "checkpoint_sha256": checkpoint, "runtime": runtime,
              "converter": converter_version(runtime, precision),
              "guided_filter": bool(use_guided_filter), "precision": precision}
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]
    return key, fields


def cache_root():
    return home_dir() / "runtimes"


def _check_manifest(folder):
    """Raise ValueError unless every file the manifest of `folder` names has its sha256."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"unreadable {MANIFEST} ({getattr(err, 'strerror', None) or err})")
    for name, expected in files.items():
        if not (folder / name).is_file():
            raise ValueError(f"{name} is missing")
        if sha256_file(folder / name).hexdigest() != expected:
            raise ValueError(f"{name} does not match its checksum")


def cached(folder, convert, load, warn=notice):
    """load(folder) for the cache entry `folder`, made first by `convert(empty temporary
    folder)` when absent, and again (after one line through `warn`) when damaged: a manifest
    mismatch or an exception from `load`. A concurrent writer that finished first wins.
    """
    folder = Path(folder)
    if folder.exists():
        try:
            _check_manifest(folder)
            return load(folder)
        except Exception as err:  # a damaged entry can fail in any of the loader's ways
            warn(f"cached model {folder} is damaged ({one_line(err)}); "
                 f"converting again")
            shutil.rmtree(folder, ignore_errors=True)
    warn(f"{CONVERTING} {folder}")
    sweep(folder.parent, folders=True)  # every key's: this is our cache
    with atomic_folder(folder, replace=False) as tmp:
        convert(tmp)
        files = {path.name: sha256_file(path).hexdigest() for path in sorted(tmp.iterdir())}
        (tmp / MANIFEST).write_text(json.dumps({"files": files}, indent=1))
    return load(folder)


def _network_functions(generator, use_guided_filter):
    """tf.functions of `cartoon_network` with N, H, W free: (generator part, filter part or
    None). The filter part takes (photo, generator output)."""
    spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="photo")
    raw = tf.TensorSpec([None, None, None, 3], tf.float32, name="raw")
    network = tf.function(lambda photo: cartoon_network(generator, photo, False),
                          input_signature=[spec])
    if not use_guided_filter:
        return network, None
    guided = tf.function(lambda photo, out: cartoon_network(lambda _: out, photo),
                         input_signature=[spec, raw])
    return network, guided


def calibration_photos():
    """int8's calibration set: scikit-image's sample photos as the network sees them by
    default, a list of float32 [1, H, W, 3] BGR in [-1, 1]."""
    return [to_unit_range(resize_crop(sample_photo(name)))[None] for name in SAMPLE_PHOTOS]


def quantize_int8(model):
    """The OpenVINO generator `model` quantized to int8 by NNCF on `calibration_photos`, mixed
    preset (asymmetric activations: leaky ReLU outputs are far from symmetric about zero).
    NNCF's output is dropped: the caller has said on one line that it converts."""
    import nncf

    photos = calibration_photos()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return nncf.quantize(model, nncf.Dataset(photos), preset=nncf.QuantizationPreset.MIXED,
                             subset_size=len(photos))


def openvino_runner(generator, checkpoint, use_guided_filter=True, precision="fp32",
                    warn=notice):
    """A runner on OpenVINO's CPU plugin: the generator in `precision` ('fp32', 'bf16', 'int8'),
    the guided filter in float32."""
    import openvino

    key, fields = cache_key(checkpoint, "openvino", use_guided_filter, precision)
    core = openvino.Core()
    names = ("generator", "filter") if use_guided_filter else ("generator",)

    def convert(path):
        (path / "key.json").write_text(json.dumps(fields, indent=1))
        for name, function in zip(names, _network_functions(generator, use_guided_filter)):
            model = openvino.convert_model(function)
            if name == "generator" and precision == "int8":
                model = quantize_int8(model)
            try:
                openvino.save_model(model, str(path / f"{name}.xml"), compress_to_fp16=False)
            except RuntimeError:  # OpenVINO says only "basic_ios::clear: iostream error"
                raise OSError(f"could not write the converted model to {path.parent} (disk "
                              f"full, or the folder not writable?)") from None

    def load(path):
        hints = {"generator": "bf16" if precision == "bf16" else "f32", "filter": "f32"}
        return [_compile(core, path / f"{name}.xml", {"INFERENCE_PRECISION_HINT": hints[name],
                                                      "PERFORMANCE_HINT": "LATENCY"})
                for name in names]

    models = cached(cache_root() / "openvino" / key, convert, load, warn)

    def run(photo):
        photo = np.ascontiguousarray(photo, np.float32)
        out = models[0]([photo])[0]
        if len(models) > 1:
            out = models[1]([photo, out])[0]
        return out

    return run


def _compile(core, xml, config):
    """OpenVINO's model `xml` compiled for its CPU plugin. RuntimeError naming the file, with
    OpenVINO's last line of why (its first lines name only its own source files)."""
    try:
        return core.compile_model(str(xml), "CPU", config)
    except RuntimeError as err:
        raise RuntimeError(f"could not read the cached model {xml} ({one_line(err, 'last')})") \
            from None


def onnxruntime_runner(generator, checkpoint, use_guided_filter=True, precision="fp32",
                       warn=notice):
    """A runner on ONNX Runtime's CPU provider, float32."""
    import onnxruntime

    key, fields = cache_key(checkpoint, "onnxruntime", use_guided_filter, precision)

    def convert(path):
        (path / "key.json").write_text(json.dumps(fields, indent=1))
        spec = (tf.TensorSpec([None, None, None, 3], tf.float32, name="photo"),)
        function = tf.function(
            lambda photo: cartoon_network(generator, photo, use_guided_filter),
            input_signature=spec)
        (path / "model.onnx").write_bytes(onnx_bytes(function))

    def load(path):
        return onnxruntime.InferenceSession(str(path / "model.onnx"),
                                            providers=["CPUExecutionProvider"])

    session = cached(cache_root() / "onnxruntime" / key, convert, load, warn)
    name = session.get_inputs()[0].name
    return lambda photo: session.run(None, {name: np.ascontiguousarray(photo, np.float32)})[0]
