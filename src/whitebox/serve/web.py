"""The local web page of app.py (docs/DEPLOYMENT.md, "Web page"): drop photos, see each beside
its cartoon, download the PNG: the bytes `cartoonize.py --format png` writes. Weights are
loaded once; when they are missing the page shows the command line's instructions and the next
request tries again. Requests queue one at a time. Gradio never reaches the internet: no
analytics (whitebox.base.privacy), no share link, fonts from its own package.
"""
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

from whitebox.base import notice
from whitebox.base.files import private_tempdir, write_bytes_atomic

private_tempdir()  # before Gradio loads: it fixes its temporary folder then

import gradio as gr  # noqa: E402

from whitebox.base.errors import display_path  # noqa: E402
from whitebox.base.image_io import (  # noqa: E402
    ImageError,
    declared_size,
    decode_bgr,
    encode,
    read_file,
)
from whitebox.infer.samples import write_sample_photos  # noqa: E402

# Where gradio keeps uploads and copies of results.
GRADIO_CACHE_ENV = "GRADIO_TEMP_DIR"
# Requests waiting beyond this many are refused with gradio's "queue full" message.
QUEUE_SIZE = 16
# Uploads larger than this are refused by gradio before they reach the model.
MAX_UPLOAD = "200mb"
# Seconds after which gradio deletes its cached uploads and results.
KEEP_SECONDS = 3600
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
SYSTEM_MONO_FONTS = ["ui-monospace", "monospace"]
RESOLUTIONS = {"cap": "short side capped at 720 pixels, as the reference",
               "full": "full resolution (in tiles)"}
# Full resolution here takes at most 8192 x 8192 pixels, far below the command line's limit:
# memory and time grow with the pixels, and one photo holds the queue.
FULL_RESOLUTION_PIXELS = 1 << 26


class Engine:
    """The generator, loaded once, and one Cartoonizer per choice of options sharing it.
    `problem`: None, or the message loading the weights raised. `warn` gets the notices of a
    download or a first conversion."""

    def __init__(self, weights=None, offline=False, warn=notice):
        self.weights, self.offline, self.warn = weights, offline, warn
        self.generator, self.prefix, self.problem = None, None, None
        self._cartoonizers = {}
        self._lock = threading.Lock()

    def load(self):
        """Load the weights unless loaded; whether they are."""
        from whitebox.base.errors import WeightsError
        from whitebox.infer.weights import load_generator_weights

        with self._lock:
            if self.generator is None:
                try:
                    self.generator, self.prefix = load_generator_weights(self.weights, self.offline,
                                                                  warn=self.warn)
                    self.problem = None
                except WeightsError as err:
                    self.problem = f"error: {err}"
        return self.generator is not None

    def cartoonizer(self, resolution, guided_filter, precision):
        """The Cartoonizer of these options (`resolution`: a key of RESOLUTIONS); after `load`."""
        from whitebox.infer.loader import make_cartoonizer
        from whitebox.infer.options import MAX_SHORT_SIDE, InferenceOptions

        options = InferenceOptions(precision=precision, guided_filter=bool(guided_filter),
                                   max_short_side=MAX_SHORT_SIDE if resolution == "cap" else 0)
        with self._lock:
            if options not in self._cartoonizers:
                self._cartoonizers[options] = make_cartoonizer(self.generator, self.prefix,
                                                               options, self.warn)
            return self._cartoonizers[options]


def supported_precisions():
    """[(label, precision)] that the runtime auto runs natively here, fp32 first."""
    from whitebox.infer.options import INFERENCE_PRECISIONS
    from whitebox.model.precision import runnable

    return [(f"{precision} ({where})", precision)
            for precision, where in runnable(INFERENCE_PRECISIONS)]


def cartoonize_file(cartoonizer, source, folder):
    """One photo file -> two PNG paths in `folder`, named after `source`: the photo as the
    network saw it, its cartoon. Raises ImageError, ValueError (one line), OSError."""
    from whitebox.infer.inference import resize_crop

    data = read_file(source)
    if cartoonizer.max_short_side == 0:
        check_full_resolution(declared_size(data), known=True)
    image = decode_bgr(data)
    if cartoonizer.max_short_side == 0:
        check_full_resolution(image.shape[1::-1])
    cartoon = encode(cartoonizer.cartoonize(image), ".png")
    stem = Path(source).stem
    photo_path, cartoon_path = folder / "photo" / f"{stem}.png", folder / f"{stem}.png"
    write_bytes_atomic(photo_path, encode(resize_crop(image, cartoonizer.max_short_side), ".png"))
    write_bytes_atomic(cartoon_path, cartoon)
    return photo_path, cartoon_path


def check_full_resolution(size, known=False):
    """ValueError when `size` (width, height) exceeds FULL_RESOLUTION_PIXELS, or is None with
    `known` (a header image_io.declared_size cannot read: a small file may decode to GBs)."""
    if size is None and known:
        raise ValueError("full resolution here takes only photos whose header gives their size "
                         "(PNG, JPEG, BMP, GIF, WebP, TIFF, PNM, Sun raster): choose the "
                         "720-pixel cap, or use cartoonize.py --max-short-side 0")
    if size is not None and size[0] * size[1] > FULL_RESOLUTION_PIXELS:
        raise ValueError(f"too many pixels for full resolution here ({size[0]} x {size[1]}; "
                         f"the page's limit is {FULL_RESOLUTION_PIXELS} pixels): choose the "
                         f"720-pixel cap, or use cartoonize.py --max-short-side 0")


class Results:
    """A request's result folders, one per photo under `root`, removed when the next request
    starts: gradio shows its own copies (emptied by gr.Blocks' delete_cache)."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def start(self):
        for folder in self.root.glob("result-*"):
            shutil.rmtree(folder, ignore_errors=True)

    def new_folder(self):
        return Path(tempfile.mkdtemp(prefix="result-", dir=self.root))


def cartoonize_files(engine, results, sources, resolution, guided_filter, precision,
                     progress=lambda fraction, desc: None):
    """Cartoonize photo files one after another. Returns (gallery: [(path, caption)] of photo
    and cartoon in turn, the cartoons' paths, status: a line per failed file and one with the
    count and time, or the weights' problem).
    """
    if not sources:
        return [], [], "Drop or pick one or more photos first, or click a sample photo."
    if not engine.load():
        return [], [], engine.problem
    start = time.perf_counter()
    results.start()
    cartoonizer = engine.cartoonizer(resolution, guided_filter, precision)
    gallery, downloads, lines = [], [], []
    for i, source in enumerate(sources):
        name = display_path(Path(source).name)
        progress(i / len(sources), f"{name} ({i + 1} of {len(sources)})")
        try:
            photo, cartoon = cartoonize_file(cartoonizer, source, results.new_folder())
        except (ImageError, ValueError) as err:
            lines.append(f"failed {name}: {err}")
            continue
        except OSError as err:
            lines.append(f"failed {name}: cannot write the result ({err.strerror or err})")
            continue
        gallery += [(str(photo), f"{name}: photo"), (str(cartoon), f"{cartoon.name}: cartoon")]
        downloads.append(str(cartoon))
    seconds = time.perf_counter() - start
    lines.append(f"{len(downloads)} of {len(sources)} photo(s) cartoonized in {seconds:.1f} s "
                 f"({precision}, {RESOLUTIONS[resolution]}, guided filter "
                 f"{'on' if guided_filter else 'off'})")
    return gallery, downloads, "\n".join(lines)


def build(engine, results, samples):
    """The page (gr.Blocks) over `engine`, writing into `results`; `samples`: photo paths."""
    precisions = supported_precisions()
    with gr.Blocks(title="White-box Cartoonization", analytics_enabled=False,
                   delete_cache=(KEEP_SECONDS // 4, KEEP_SECONDS)) as page:
        gr.Markdown("# White-box Cartoonization\nDrop photos (or click a sample), press "
                    "**Cartoonize**, download the PNG cartoons. The same numbers as "
                    "`cartoonize.py --format png`.")
        with gr.Row():
            with gr.Column():
                files = gr.File(label="Photos", file_count="multiple", type="filepath",
                                elem_id="photos")
                sample_gallery = gr.Gallery(value=[str(p) for p in samples], columns=4,
                                            label="Sample photos (scikit-image): click one",
                                            allow_preview=False, height=170,
                                            elem_id="samples")
                resolution = gr.Radio([(text, key) for key, text in RESOLUTIONS.items()],
                                      value="cap", label="Resolution")
                guided = gr.Checkbox(value=True, label="photo-guided filter (as the reference)")
                precision = gr.Radio(precisions, value="fp32", label="Precision (only those "
                                                                      "this machine supports)")
                button = gr.Button("Cartoonize", variant="primary", elem_id="run")
            with gr.Column():
                status = gr.Textbox(label="Status", value=engine.problem or "",
                                    interactive=False, lines=2, max_lines=30, elem_id="status")
                gallery = gr.Gallery(label="Photo and cartoon", columns=2, height="auto",
                                     elem_id="results")
                downloads = gr.File(label="Cartoons (PNG)", file_count="multiple",
                                    interactive=False, elem_id="downloads")

        def run(sources, resolution, guided_filter, precision, progress=gr.Progress()):
            return cartoonize_files(engine, results, sources or [], resolution, guided_filter,
                                    precision, lambda f, desc: progress(f, desc=desc))

        def run_sample(resolution, guided_filter, precision, selected: gr.SelectData,
                       progress=gr.Progress()):
            return run([str(samples[selected.index])], resolution, guided_filter, precision,
                       progress)

        outputs = [gallery, downloads, status]
        options = [resolution, guided, precision]
        button.click(run, [files, *options], outputs, concurrency_id="model")
        sample_gallery.select(run_sample, options, outputs, concurrency_id="model")
    return page


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop_on_sigterm():
    """In the main thread, SIGTERM (a service manager's stop) stops as Ctrl-C does, removing the
    workspace. Returns the handler it replaced, else None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _interrupt)


def serve(weights=None, host="127.0.0.1", port=7860, offline=False, warn=notice):
    """Serve the page until Ctrl-C (missing weights: their problem on the page, and to `warn`).
    Raises OSError when the address cannot be used."""
    from whitebox.base.quiet_tf import import_tensorflow

    import_tensorflow()
    engine = Engine(weights, offline, warn)
    if not engine.load():
        warn(engine.problem)
    workspace = Path(tempfile.mkdtemp(prefix="whitebox-web-"))
    # Gradio's uploads and results go inside the workspace, removed with it (by default they
    # stay in TMPDIR); a folder the user chose through the variable is left to them.
    own_cache = GRADIO_CACHE_ENV not in os.environ
    if own_cache:
        os.environ[GRADIO_CACHE_ENV] = str(workspace / "gradio")
    on_sigterm = _stop_on_sigterm()
    try:
        samples = write_sample_photos(workspace / "samples")
        page = build(engine, Results(workspace / "results"), samples)
        page.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
        theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO_FONTS)
        try:
            page.launch(server_name=host, server_port=port, share=False,
                        max_file_size=MAX_UPLOAD, theme=theme, allowed_paths=[str(workspace)],
                        footer_links=[])
        except OSError:
            raise OSError(f"cannot listen on {host}:{port}: the port is in use, or the address "
                          f"is not one of this computer's (see --host, --port)") from None
    finally:
        if on_sigterm is not None:
            signal.signal(signal.SIGTERM, on_sigterm)
        if own_cache:
            os.environ.pop(GRADIO_CACHE_ENV, None)
        shutil.rmtree(workspace, ignore_errors=True)
