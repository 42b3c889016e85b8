"""Cartoonizing videos frame by frame with PyAV (its wheel ships FFmpeg; imported only for a
video), as docs/DEPLOYMENT.md ("Video") describes.

One thread decodes, the caller's runs the network on small batches of frames, another encodes,
with bounded queues between them: memory does not grow with the video's length. Each frame
gets the image path's treatment, so the output has the resized and cropped size, at the
input's frame rate in its container (ENCODERS); the first audio track is copied, or
re-encoded when the container cannot hold it. The output appears only when complete.
"""
import contextlib
import queue
import threading
from fractions import Fraction
from pathlib import Path

from whitebox.base.errors import InputError, display_path, one_line
from whitebox.base.files import atomic_file
from whitebox.infer.options import VIDEO_BATCH

# FFmpeg's format per extension (the temporary output name cannot tell it).
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".avi": "avi", ".mkv": "matroska", ".webm": "webm"}
VIDEO_EXTENSIONS = set(CONTAINERS)

# (codec, options) per container: nearly lossless, as flat cartoon areas show blocking quickly.
_X264 = ("libx264", {"crf": "18", "preset": "medium"})
ENCODERS = {
    ".mp4": _X264, ".mov": _X264, ".mkv": _X264,
    ".webm": ("libvpx-vp9", {"crf": "30", "b": "0", "row-mt": "1"}),
    ".avi": ("mpeg4", {}),
}
# MPEG-4 Part 2 has no constant quality through PyAV: bits per pixel per frame instead.
MPEG4_BITS_PER_PIXEL = 0.4
QUEUE_DEPTH = 8
_END = object()


class VideoError(InputError):
    """A video that cannot be read or written; str() is a one-line reason."""


def is_video(path):
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


class _Worker:
    """A thread's stop flag and first exception, re-raised in the caller by `check()`."""

    def __init__(self):
        self.error = None
        self.stop = threading.Event()
        self.last_time = None

    def check(self):
        if self.error is not None:
            raise self.error


def _reason(err):
    """Why PyAV failed, in words, without PyAV's error number and file name."""
    import av

    if isinstance(err, av.error.InvalidDataError):
        return "invalid data: damaged, truncated or not a video"
    return getattr(err, "strerror", None) or one_line(err)


def _reader(container, video_stream, audio_stream, out_queue, worker):
    """Demux and decode in a thread: puts ('frame', BGR uint8 array) and ('audio', packet)."""
    import av

    def put(item):
        while not worker.stop.is_set():
            try:
                out_queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    streams = [s for s in (video_stream, audio_stream) if s is not None]
    try:
        for packet in container.demux(*streams):
            if packet.stream is audio_stream:
                if packet.dts is not None and not put(("audio", packet)):
                    return
                continue
            for frame in packet.decode():
                if frame.time is not None:
                    worker.last_time = max(worker.last_time or 0.0, frame.time)
                if not put(("frame", frame.to_ndarray(format="bgr24"))):
                    return
    except (av.error.FFmpegError, ValueError) as err:
        worker.error = VideoError(f"cannot decode video: {_reason(err)}")
    except BaseException as err:  # noqa: BLE001 - handed to the caller, which re-raises it
        worker.error = err
    finally:
        put((_END, None))


class _Writer:
    """Encodes frames and muxes audio in a thread, opening the output at the first frame."""

    def __init__(self, path, suffix, rate, audio_stream, first_pts=0):
        self.path, self.suffix, self.rate = path, suffix, rate
        self.in_audio = audio_stream
        self.queue = queue.Queue(QUEUE_DEPTH)
        self.worker = _Worker()
        self.container = self.video = self.audio = None
        self.audio_encoder = self.audio_resampler = None
        self.pending_audio = []
        self.frames = 0
        self.first_pts = first_pts
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def put(self, item):
        while True:
            self.worker.check()
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                if not self.thread.is_alive():
                    self.worker.check()
                    raise VideoError("video writer stopped")

    def finish(self):
        self.put((_END, None))
        self.thread.join()
        self.worker.check()

    def abort(self):
        self.worker.stop.set()
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait((_END, None))
        self.thread.join(timeout=10)
        if self.container is not None:
            with contextlib.suppress(Exception):
                self.container.close()

    def _open(self, height, width):
        import av

        codec, options = ENCODERS.get(self.suffix, (None, {}))
        self.container = av.open(str(self.path), "w", format=CONTAINERS[self.suffix])
        codec = codec or self.container.default_video_codec
        self.video = self.container.add_stream(codec, rate=self.rate, options=dict(options))
        self.video.width, self.video.height = width, height
        self.video.pix_fmt = "yuv420p"
        if codec == "mpeg4":
            self.video.bit_rate = int(MPEG4_BITS_PER_PIXEL * width * height * self.rate)
        self.video.codec_context.time_base = Fraction(1) / self.rate
        if self.in_audio is not None:
            self._add_audio()

    def _add_audio(self):
        """Copy the audio when the container accepts its codec, else re-encode."""
        import av

        name = self.in_audio.codec_context.name
        supported = getattr(self.container, "supported_codecs", None)
        if supported is None or name in supported:
            self.audio = self.container.add_stream_from_template(self.in_audio)
            return
        codec = self.container.default_audio_codec
        self.audio = self.container.add_stream(codec, rate=self.in_audio.codec_context.rate)
        self.audio_encoder = self.audio
        self.audio_resampler = av.AudioResampler(
            format=self.audio.codec_context.format, layout=self.audio.codec_context.layout,
            rate=self.audio.codec_context.rate)

    def _mux_audio(self, packet):
        if self.audio_encoder is None:
            packet.stream = self.audio
            self.container.mux(packet)
            return
        for frame in packet.decode():
            for resampled in self.audio_resampler.resample(frame):
                resampled.pts = None
                self.container.mux(self.audio_encoder.encode(resampled))

    def _run(self):
        import av

        try:
            while True:
                kind, item = self.queue.get()
                if kind is _END or self.worker.stop.is_set():
                    break
                if kind == "audio":
                    if self.container is None:
                        self.pending_audio.append(item)
                    else:
                        self._mux_audio(item)
                    continue
                if self.container is None:
                    self._open(*item.shape[:2])
                    for packet in self.pending_audio:
                        self._mux_audio(packet)
                    self.pending_audio = []
                frame = av.VideoFrame.from_ndarray(item, format="bgr24")
                frame.pts = self.first_pts + self.frames
                frame.time_base = self.video.codec_context.time_base
                self.frames += 1
                self.container.mux(self.video.encode(frame))
            if self.container is not None and not self.worker.stop.is_set():
                self.container.mux(self.video.encode())
                if self.audio_encoder is not None:
                    self.container.mux(self.audio_encoder.encode())
                self.container.close()
        except (av.error.FFmpegError, ValueError) as err:
            self.worker.error = VideoError(f"cannot encode video: {_reason(err)}")
        except BaseException as err:  # noqa: BLE001 - re-raised by the caller via check()
            self.worker.error = err


def _open_input(source):
    import av

    try:
        container = av.open(str(source), "r")
    except FileNotFoundError:
        raise VideoError("no such file")
    except IsADirectoryError:
        raise VideoError("is a folder, not a file")
    except PermissionError:
        raise VideoError("permission denied")
    except (av.error.FFmpegError, ValueError, OSError) as err:
        raise VideoError(f"not a readable video ({_reason(err)})")
    if not container.streams.video:
        container.close()
        raise VideoError("no video stream")
    return container


def _declared_seconds(container, stream):
    """The length the header declares (stream, else container), or None."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1e6
    return None


def _check_complete(container, stream, last_time, rate):
    """VideoError when decoding stopped well before the declared end (FFmpeg's demuxers end
    quietly at a cut). The margin, 10% plus 0.5 s, allows for audio outlasting the picture."""
    declared = _declared_seconds(container, stream)
    if declared is None or last_time is None:
        return
    start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
    decoded = last_time - start + 1 / float(rate)
    if decoded < 0.9 * declared - 0.5:
        raise VideoError(f"truncated video: frames end at {decoded:.2f} s of "
                         f"{declared:.2f} s declared")


def cartoonize_video(source, target, cartoonize_batch, batch_size=VIDEO_BATCH, progress=None):
    """Cartoonize the video `source` into `target` (the container of its extension).

    cartoonize_batch: list of HxWx3 uint8 BGR frames -> list of cartoons (all one size).
    progress: None, or a callable given the number of frames just written (tqdm.update).
    Returns the frames written. Raises VideoError (one line); no file is left at `target`.
    """
    source, target = Path(source), Path(target)
    container = _open_input(source)
    try:
        with atomic_file(target) as (_, tmp):
            return _stream(container, tmp, target.suffix.lower(), cartoonize_batch, batch_size,
                           progress)
    except OSError as err:
        raise VideoError(f"cannot write {display_path(target)}: {err.strerror or err}") from None
    finally:
        container.close()


def _stream(container, tmp, suffix, cartoonize_batch, batch_size, progress):
    """`cartoonize_video`'s work, into the file `tmp` as the container of `suffix`."""
    video_stream = container.streams.video[0]
    audio_stream = container.streams.audio[0] if container.streams.audio else None
    video_stream.thread_type = "AUTO"
    rate = video_stream.average_rate or video_stream.guessed_rate or Fraction(25)
    frames_in = queue.Queue(QUEUE_DEPTH)
    reader = _Worker()
    reader_thread = threading.Thread(
        target=_reader, args=(container, video_stream, audio_stream, frames_in, reader),
        daemon=True)
    # Frames are renumbered from the video's own start, so that it keeps its place against
    # audio that starts earlier.
    start = float(video_stream.start_time * video_stream.time_base) \
        if video_stream.start_time and video_stream.time_base else 0.0
    writer = _Writer(tmp, suffix, rate, audio_stream,
                     first_pts=max(0, round(start * float(rate))))
    reader_thread.start()
    size, written, done = None, 0, False
    try:
        batch = []

        def flush():
            nonlocal written
            if batch:
                for out in cartoonize_batch(batch):
                    writer.put(("frame", out))
                written += len(batch)
                if progress:
                    progress(len(batch))
                batch.clear()

        while True:
            kind, item = frames_in.get()
            if kind is _END:
                reader.check()
                _check_complete(container, video_stream, reader.last_time, rate)
                break
            if kind == "audio":
                writer.put(("audio", item))
                continue
            if size is None:
                size = item.shape[:2]
            elif item.shape[:2] != size:
                raise VideoError(f"frame size changes mid-stream ({size} to {item.shape[:2]})")
            batch.append(item)
            if len(batch) >= batch_size:
                flush()
        flush()
        if written == 0:
            raise VideoError("no decodable video frames")
        writer.finish()
        done = True
        return written
    except ValueError as err:  # e.g. frames smaller than 8x8 after resize_crop
        raise VideoError(str(err))
    finally:
        reader.stop.set()
        if not done:
            writer.abort()
        reader_thread.join(timeout=10)


def frame_count(source):
    """The video frames the container declares, or None."""
    import av

    try:
        with av.open(str(source), "r") as container:
            n = container.streams.video[0].frames if container.streams.video else 0
    except (av.error.FFmpegError, ValueError, OSError):
        return None
    return n or None
