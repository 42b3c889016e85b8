"""Deployment speed and accuracy: precisions, XLA, exported formats, video.

Prints one JSON object. Run from the repository root:
    .venv/bin/python bench/deploy.py [--weights PATH] [--repeats N] [--video-frames N]
    .venv/bin/python bench/deploy.py --quick    (a check that it runs, numbers indicative)

All rows come from one run on the same 720x1280 image (a photo from ../shared/images scaled
and centre-cropped to 720x1280, or scikit-image's coffee when that folder is absent):
- `image_720x1280`: megapixels/s (best of --repeats rounds after a warm-up; every row runs
  once per round, so load from other processes spreads over all rows), process CPU seconds per
  megapixel of that call, and PSNR of the uint8 output against TF fp32, for TF fp32 / bf16 / fp16 (where supported) with and without XLA,
  the SavedModel's uint8 signature, TFLite (none, fp16, dynamic), ONNX Runtime (when
  tf2onnx and onnxruntime are installed);
- `runtimes_720x1280`: cartoonize.py's runtimes (`--runtime tf|openvino|onnxruntime`) in each
  precision they run here (OpenVINO int8 where nncf is installed), through `Cartoonizer.cartoonize` (models from the runtime cache),
  with OpenVINO's precision hint alone on the whole network (`openvino_whole_*`) as the
  baseline: megapixels/s, ratio to TF fp32, PSNR against TF fp32, and what `auto` picks for
  each precision. `--quick` runs this section alone on a small image, to check the script;
- `photos`: PSNR of bf16 against fp32 on every photo in ../shared/images at cartoonize.py's
  size (min, mean, max);
- `video`: frames/s of cartoonize_video on a generated 720x1280 clip (H.264, with AAC audio)
  for each supported precision, and the ratio to the image throughput of that precision
  measured alternately with it.
The machine is shared and has 2 cores: numbers move by 10-20% between runs.
"""
import argparse
import glob
import json
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))
from whitebox.base.quiet_tf import import_tensorflow  # noqa: E402

tf = import_tensorflow()
import cv2  # noqa: E402

from whitebox.base.cpuinfo import cpu_info  # noqa: E402
from whitebox.base.image_io import to_uint8, to_unit_range  # noqa: E402
from whitebox.infer import export as ex  # noqa: E402
from whitebox.infer import export_check as chk  # noqa: E402
from whitebox.infer import loader, runtimes  # noqa: E402
from whitebox.infer.inference import Cartoonizer, TFRunner  # noqa: E402
from whitebox.infer.options import QUANTIZE  # noqa: E402
from whitebox.model import PRECISIONS, RUNTIME_PRECISIONS  # noqa: E402
from whitebox.model import precision as capability  # noqa: E402
from whitebox.model.checkpoints import load_generator  # noqa: E402
from whitebox.model.network import Generator  # noqa: E402

SHARED_IMAGES = REPO.parent / "shared" / "images"
H, W = 720, 1280


def timed(fn):
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def round_robin(runners, repeats):
    """{name: (best wall s, CPU s of that call)}: every runner once per round, `repeats` rounds
    after a warm-up call each, so that load from other processes hits all rows alike."""
    for fn in runners.values():
        fn()
    best = {}
    for _ in range(repeats):
        for name, fn in runners.items():
            wall, cpu = timed(fn)
            if name not in best or wall < best[name][0]:
                best[name] = (wall, cpu)
    return best


def test_image():
    path = SHARED_IMAGES / "reference_test_images" / "party7.jpg"
    image = cv2.imread(str(path)) if path.exists() else None
    if image is None:
        from skimage import data
        image, path = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), "skimage coffee"
    h, w = image.shape[:2]
    scale = max(H / h, W / w)
    image = cv2.resize(image, (max(W, round(w * scale)), max(H, round(h * scale))),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    y0, x0 = (image.shape[0] - H) // 2, (image.shape[1] - W) // 2
    return image[y0:y0 + H, x0:x0 + W], str(path)


def add_openvino_whole(gen, x, runners, outputs, rows):
    """OpenVINO with its precision hint alone (f32, bf16) on the whole network, filter included,
    as one model: the baseline of the bf16 goal, when `openvino` imports."""
    try:
        import openvino as ov
    except ImportError:
        rows["openvino_whole"] = {"skipped": f"openvino is not installed ({capability.INSTALL_HINT})"}
        return
    function = TFRunner(gen).function.get_concrete_function()
    model = ov.convert_model(function, input=[1, *x.shape])
    for hint in ("f32", "bf16"):
        compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint,
                                                          "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        runners[f"openvino_whole_{hint}"] = lambda r=request: r.infer({0: x[None]})
        outputs[f"openvino_whole_{hint}"] = to_uint8(request.infer({0: x[None]})[0][0])


def runtime_rows(gen, checkpoint, image, repeats):
    """cartoonize.py's runtimes (`Cartoonizer` over each runner), every installed runtime in
    every precision it runs here, timed round-robin with the OpenVINO hint-only baseline:
    megapixels/s, the ratio to TF fp32 and PSNR against TF fp32. Also what `auto` picks."""
    runners, outputs, rows = {}, {}, {}
    for runtime in ("tf", *(r for r in RUNTIME_PRECISIONS if r != "tf")):
        if not capability.installed(runtime):
            rows[runtime] = {"skipped": f"not installed ({capability.INSTALL_HINT})"}
            continue
        for precision in RUNTIME_PRECISIONS[runtime]:
            ok, why = capability.supports(runtime, precision)
            name = f"{runtime}_{precision}"
            if not ok:
                rows[name] = {"skipped": why}
                continue
            runner = loader.make_runner(runtime, gen, checkpoint, precision=precision,
                                          warn=lambda line: print(line, file=sys.stderr))
            car = Cartoonizer(runner=runner)
            runners[name] = lambda car=car: car.cartoonize(image)
            outputs[name] = car.cartoonize(image)
    add_openvino_whole(gen, to_unit_range(image), runners, outputs, rows)
    reference = outputs["tf_fp32"]
    best = round_robin(runners, repeats)
    megapixels = image.shape[0] * image.shape[1] / 1e6
    for name, (wall, cpu) in best.items():
        same = np.array_equal(outputs[name], reference)
        rows[name] = {"megapixels_per_s": round(megapixels / wall, 3),
                      "vs_tf_fp32": round(best["tf_fp32"][0] / wall, 2),
                      "psnr_vs_tf_fp32_db": "identical" if same else
                      round(chk.psnr(outputs[name], reference), 2)}
    rows["auto"] = {precision: "{}_{}".format(*capability.choose("auto", precision,
                                                                   warn=lambda line: None))
                    for precision in PRECISIONS}
    return rows


def image_rows(gen, image, repeats, tmp):
    """Speed and PSNR against TF fp32 of every runtime, timed round-robin."""
    x = to_unit_range(image)
    photo = x[None]
    runners, outputs, rows = {}, {}, {}
    for precision in PRECISIONS:
        ok, where = capability.supports("tf", precision)
        if not ok:
            rows[f"tf_{precision}"] = {"skipped": where}
            continue
        for xla in (False, True):
            car = Cartoonizer(gen, precision=precision, jit_compile=xla)
            name = f"tf_{precision}" + ("_xla" if xla else "")
            runners[name] = lambda car=car: car.run_float(x)
            outputs[name] = to_uint8(car.run_float(x))
    module = ex.ExportModule(gen)
    ex.save_savedmodel(module, tmp / "sm")
    serving = tf.saved_model.load(str(tmp / "sm")).signatures["serving_default"]
    image_t = tf.constant(image)
    runners["savedmodel_uint8"] = lambda: serving(image=image_t)["cartoon"].numpy()
    outputs["savedmodel_uint8"] = runners["savedmodel_uint8"]()
    for quantize in QUANTIZE:
        run = chk.tflite_runner(ex.tflite_bytes(module, quantize), threads=os.cpu_count())
        runners[f"tflite_{quantize}"] = lambda run=run: run(photo)
        outputs[f"tflite_{quantize}"] = to_uint8(run(photo)[0])
    try:
        run = chk.onnx_runner(ex.onnx_bytes(module.cartoonize_float))
        runners["onnxruntime"] = lambda: run(photo)
        outputs["onnxruntime"] = to_uint8(run(photo)[0])
    except ex.MissingDependency as err:
        rows["onnxruntime"] = {"skipped": str(err)}
    reference = outputs["tf_fp32"]
    for name, (wall, cpu) in round_robin(runners, repeats).items():
        same = np.array_equal(outputs[name], reference)
        rows[name] = {"megapixels_per_s": round(H * W / wall / 1e6, 3),
                      "cpu_seconds_per_megapixel": round(cpu / (H * W / 1e6), 2),
                      "psnr_vs_fp32_db": "identical" if same else
                      round(chk.psnr(outputs[name], reference), 2)}
    return rows


def photo_psnr(gen):
    files = sorted(glob.glob(str(SHARED_IMAGES / "*" / "*.jpg")))
    if not files:
        return {"skipped": f"no photos in {SHARED_IMAGES}"}
    if not capability.supports("tf", "bf16")[0]:
        return {"skipped": "bf16 unsupported here"}
    fp32, bf16 = Cartoonizer(gen), Cartoonizer(gen, precision="bf16")
    values, worst = [], 0
    for path in files:
        image = cv2.imread(path)
        a, b = fp32.cartoonize(image), bf16.cartoonize(image)
        values.append(chk.psnr(a, b))
        worst = max(worst, int(np.abs(a.astype(int) - b).max()))
    return {"photos": len(files), "bf16_psnr_db_min": round(min(values), 2),
            "bf16_psnr_db_mean": round(float(np.mean(values)), 2),
            "bf16_psnr_db_max": round(max(values), 2), "bf16_max_level_difference": worst}


def make_clip(path, image, frames, fps=24):
    import av

    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"crf": "18"})
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        audio = out.add_stream("aac", rate=44100)
        audio.layout = "stereo"
        for i in range(frames):
            shifted = np.roll(image, 8 * i, axis=1)
            frame = av.VideoFrame.from_ndarray(shifted, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        n = 1024
        t = np.arange(int(44100 * frames / fps)) / 44100
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, len(tone) - n, n):
            chunk = np.repeat(tone[None, start:start + n], 2, axis=0)
            a = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            a.sample_rate, a.pts = 44100, start
            out.mux(audio.encode(a))
        out.mux(audio.encode())


def video_rows(gen, image, frames, tmp, batch, rounds):
    """Video frames/s against image throughput (cartoonize() on the same frame size), for
    each supported precision, timed alternately over `rounds` rounds; best of each."""
    from whitebox.infer.video import cartoonize_video

    clip = tmp / "clip.mp4"
    make_clip(clip, image, frames)
    rows = {"frames": frames, "size": f"{W}x{H}", "batch": batch, "rounds": rounds}
    for precision in PRECISIONS:
        if not capability.supports("tf", precision)[0]:
            continue
        car = Cartoonizer(gen, precision=precision)
        car.cartoonize_batch([image] * batch)  # trace and warm up outside the timing
        car.cartoonize(image)
        n_images = max(2, frames // 4)
        best_video = best_image = 0.0
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(n_images):
                car.cartoonize(image)
            best_image = max(best_image, n_images / (time.perf_counter() - start))
            start = time.perf_counter()
            n = cartoonize_video(clip, tmp / "out.mp4", car.cartoonize_batch, batch)
            best_video = max(best_video, n / (time.perf_counter() - start))
        rows[precision] = {"video_fps": round(best_video, 3),
                           "image_per_s": round(best_image, 3),
                           "ratio": round(best_video / best_image, 3)}
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=str(REPO.parent / "shared" / "weights" /
                                            "whitebox_official"),
                   help="checkpoint (default ../shared/weights/whitebox_official; random "
                        "weights if it is absent)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--video-frames", type=int, default=24)
    p.add_argument("--video-batch", type=int, default=2)
    p.add_argument("--video-rounds", type=int, default=2)
    p.add_argument("--skip", nargs="*", default=[],
                   choices=["images", "runtimes", "photos", "video"])
    p.add_argument("--quick", action="store_true",
                   help="check that the script works: the runtimes section only, at 176x320, "
                        "one round (numbers indicative only)")
    args = p.parse_args()
    global H, W
    if args.quick:
        H, W, args.repeats, args.skip = 176, 320, 1, ["images", "photos", "video"]
    gen = Generator()
    weights, checkpoint = "random", "random-weights"
    if Path(args.weights).exists():
        prefix = load_generator(gen, args.weights)
        weights, checkpoint = args.weights, runtimes.checkpoint_digest(prefix)
    image, source = test_image()
    result = {"tensorflow": tf.__version__, "cpus": os.cpu_count(), "cpu": cpu_info(),
              "bf16": capability.supports("tf", "bf16"), "weights": weights, "image": source,
              "repeats": args.repeats}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = image_rows(gen, image, args.repeats, tmp) if "images" not in args.skip else {}
        result["image_720x1280"] = rows
        if "runtimes" not in args.skip:
            result[f"runtimes_{H}x{W}"] = runtime_rows(gen, checkpoint, image, args.repeats)
        if "photos" not in args.skip:
            result["photos"] = photo_psnr(gen)
        if "video" not in args.skip:
            result["video"] = video_rows(gen, image, args.video_frames, tmp,
                                         args.video_batch, args.video_rounds)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
