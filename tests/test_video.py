"""Video through cartoonize.py: frames, size, rate and audio kept; broken files reported."""
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from tests.conftest import REPO
from whitebox.cli import cartoonize

av = pytest.importorskip("av")

FPS = 12
FRAMES = 12          # 1 s
SAMPLE_RATE = 16000


def make_clip(path, size=(40, 52), frames=FRAMES, fps=FPS, audio=True):
    """A 1 s clip of a moving gradient (H.264 or VP9 by extension) with a 440 Hz sine tone."""
    h, w = size
    webm = str(path).endswith(".webm")
    with av.open(str(path), "w") as out:
        video = out.add_stream("libvpx-vp9" if webm else "libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        sound = None
        if audio:
            sound = out.add_stream("libopus" if webm else "aac", rate=SAMPLE_RATE if not webm
                                   else 48000)
            sound.layout = "mono"
        y, x = np.mgrid[0:h, 0:w]
        for i in range(frames):
            image = np.stack([(x * 4 + i * 10) % 256, (y * 5) % 256,
                              np.full_like(x, 128 + i * 5)], -1).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is not None:
            rate = sound.codec_context.rate
            chunk = sound.codec_context.frame_size or 1024
            t = np.arange(rate) / rate
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, rate, chunk):
                piece = tone[start:start + chunk]
                if len(piece) < chunk:
                    piece = np.pad(piece, (0, chunk - len(piece)))
                aframe = av.AudioFrame.from_ndarray(piece[None], format="fltp", layout="mono")
                aframe.sample_rate = rate
                aframe.pts = start
                out.mux(sound.encode(aframe))
            out.mux(sound.encode())
    return path


def probe(path):
    """(frame count decoded, (h, w), average rate, has audio)."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        shapes = [f.to_ndarray(format="bgr24").shape[:2] for f in c.decode(stream)]
        rate = stream.average_rate
        has_audio = bool(c.streams.audio)
    assert len(set(shapes)) == 1
    return len(shapes), shapes[0], rate, has_audio


def test_clip_keeps_frames_rate_audio_and_gets_cropped(tmp_path, tf1_checkpoint):
    clip = make_clip(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    rc = cartoonize.main(["-i", str(clip), "-o", str(out), "--weights", str(tf1_checkpoint[0]),
                          "-q", "--format", "png"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4"]  # no temp file left
    n, shape, rate, has_audio = probe(out / "clip.mp4")
    assert (n, shape, rate, has_audio) == (FRAMES, (40, 48), FPS, True)
    with av.open(str(out / "clip.mp4")) as c:
        samples = sum(f.samples for f in c.decode(c.streams.audio[0]))
    assert abs(samples - SAMPLE_RATE) <= 2048  # the tone's second, give or take codec padding


def test_frames_match_the_image_path(tmp_path, tf1_checkpoint):
    """Each output frame is the image cartoonizer's result on the decoded frame, up to the
    H.264 encoding error; checked on frames decoded from the lossless intermediate."""
    from whitebox.infer.inference import Cartoonizer
    from whitebox.infer.video import cartoonize_video
    from whitebox.model.checkpoints import load_generator
    from whitebox.model.network import Generator

    gen = Generator()
    load_generator(gen, tf1_checkpoint[0])
    car = Cartoonizer(gen)
    clip = make_clip(tmp_path / "c.mkv", frames=5, audio=False)
    seen = []

    def batch_fn(frames):
        seen.extend(frames)
        return car.cartoonize_batch(frames)

    assert cartoonize_video(clip, tmp_path / "o.mkv", batch_fn, batch_size=2) == 5
    single = [car.cartoonize(f) for f in seen]
    batched = car.cartoonize_batch(seen[:2])
    for a, b in zip(single, batched):
        assert np.abs(a.astype(int) - b).max() <= 1
    n, shape, _rate, has_audio = probe(tmp_path / "o.mkv")
    assert (n, shape, has_audio) == (5, (40, 48), False)


def test_webm_with_opus_audio(tmp_path, tf1_checkpoint):
    clip = make_clip(tmp_path / "w.webm", frames=6, size=(32, 32))
    out = tmp_path / "out"
    assert cartoonize.main(["-i", str(clip), "-o", str(out), "--weights",
                            str(tf1_checkpoint[0]), "-q"]) == 0
    assert probe(out / "w.webm") == (6, (32, 32), FPS, True)


def test_broken_and_truncated_videos_are_reported(tmp_path, tf1_checkpoint):
    folder = tmp_path / "in"
    folder.mkdir()
    data = make_clip(tmp_path / "good.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(data[: len(data) // 2])
    (folder / "junk.avi").write_bytes(b"this is not a video" * 50)
    data = make_clip(tmp_path / "good.mkv", frames=24, audio=False).read_bytes()
    (folder / "cut.mkv").write_bytes(data[: len(data) * 2 // 3])  # header intact, tail cut
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "cartoonize.py"), "-i", str(folder), "-o", str(out),
         "--weights", str(tf1_checkpoint[0]), "-q"],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    failed = [line for line in proc.stderr.splitlines() if line.startswith("failed ")]
    assert len(failed) == 3, proc.stderr
    assert any("cut.mp4: not a readable video (invalid data: damaged, truncated or not a "
               "video)" in line for line in failed), failed
    assert "Errno" not in proc.stderr and str(folder / "cut.mp4'") not in proc.stderr
    assert any("cut.mkv: truncated video" in line for line in failed)
    assert any("junk.avi: not a readable video" in line for line in failed)
    assert not out.exists() or not list(out.iterdir())


def test_sample_clip_script_writes_its_clip_and_refuses_other_names(tmp_path):
    script = [sys.executable, str(REPO / "scripts" / "sample_clip.py")]
    done = subprocess.run(script + [str(tmp_path / "c.mkv")], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert probe(tmp_path / "c.mkv") == (48, (256, 384), 24, False)
    bad = subprocess.run(script + [str(tmp_path / "c.gif")], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1, bad.stderr
    assert "the name must end with .mp4" in bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mkv"]

def test_audio_is_reencoded_when_the_container_cannot_hold_it(tmp_path):
    """PCM audio cannot go into WebM: it is re-encoded (Opus), keeping its length."""
    from whitebox.infer.video import cartoonize_video

    src = tmp_path / "pcm.mkv"
    with av.open(str(src), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 48, 32, "yuv420p"
        sound = out.add_stream("pcm_s16le", rate=SAMPLE_RATE)
        sound.layout = "mono"
        for i in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(np.full((32, 48, 3), i * 20, np.uint8),
                                               format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        tone = (np.sin(np.arange(SAMPLE_RATE) * 2 * np.pi * 440 / SAMPLE_RATE)
                * 10000).astype(np.int16)
        for start in range(0, SAMPLE_RATE, 1000):
            aframe = av.AudioFrame.from_ndarray(tone[None, start:start + 1000], format="s16",
                                                layout="mono")
            aframe.sample_rate, aframe.pts = SAMPLE_RATE, start
            out.mux(sound.encode(aframe))
        out.mux(sound.encode())
    assert cartoonize_video(src, tmp_path / "o.webm", lambda frames: frames) == FRAMES
    with av.open(str(tmp_path / "o.webm")) as c:
        stream = c.streams.audio[0]
        seconds = sum(f.samples for f in c.decode(stream)) / stream.codec_context.rate
    assert stream.codec_context.name == "opus" and abs(seconds - 1.0) < 0.05
