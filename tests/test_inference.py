import cv2
import numpy as np
import pytest
import tensorflow as tf

from whitebox.base.image_io import to_uint8, to_unit_range
from whitebox.infer.inference import Cartoonizer, resize_crop, tile_spans
from whitebox.model.network import Generator


def test_resize_crop_caps_short_side_with_inter_area():
    image = np.random.default_rng(0).integers(0, 256, (900, 1500, 3), np.uint8)
    out = resize_crop(image)
    # short side 720, long side int(720 * 1500 / 900) = 1200, both already multiples of 8
    assert out.shape == (720, 1200, 3)
    np.testing.assert_array_equal(out, cv2.resize(image, (1200, 720),
                                                  interpolation=cv2.INTER_AREA))


def test_resize_crop_portrait_long_side_truncates_then_crops_top_left():
    image = np.random.default_rng(1).integers(0, 256, (1001, 731, 3), np.uint8)
    out = resize_crop(image)
    long_side = int(720 * 1001 / 731)          # 985 -> cropped to 984
    resized = cv2.resize(image, (720, long_side), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(out, resized[:984, :720])


def test_small_images_are_only_cropped_and_zero_disables_cap():
    image = np.random.default_rng(2).integers(0, 256, (723, 1203, 3), np.uint8)
    np.testing.assert_array_equal(resize_crop(image, 0), image[:720, :1200])
    small = image[:37, :50]
    np.testing.assert_array_equal(resize_crop(small), small[:32, :48])
    assert resize_crop(image[:7, :100]).shape[0] == 0


def test_value_mapping_and_truncation():
    bgr = np.array([[[0, 127, 255]]], np.uint8)
    np.testing.assert_allclose(to_unit_range(bgr), [[[-1.0, 127 / 127.5 - 1, 1.0]]])
    out = to_uint8(np.array([[[-1.5, 0.999, 0.0]]], np.float32))
    # -1.5 clips to 0; 0.999 -> 254.87 truncates to 254; 0 -> 127.5 truncates to 127
    np.testing.assert_array_equal(out, [[[0, 254, 127]]])


def test_channel_order_is_kept_bgr():
    """A generator that returns its input shows that no channel swap happens anywhere."""
    class Identity:
        def __call__(self, x):
            return x
    image = np.zeros((16, 16, 3), np.uint8)
    image[..., 0] = 200  # blue
    out = Cartoonizer(Identity(), use_guided_filter=False).cartoonize(image)
    assert out[..., 0].min() >= 199 and out[..., 1:].max() <= 1


def test_tile_spans_cover_and_align():
    spans = tile_spans(1000, core=256, margin=96)
    assert [s[2] for s in spans] == [0, 256, 512, 768]
    assert spans[-1][3] == 1000
    assert all(r0 % 4 == 0 for r0, _, _, _ in spans)
    assert all(r0 <= c0 and r1 >= c1 for r0, r1, c0, c1 in spans)


def test_tiled_output_equals_untiled():
    tf.random.set_seed(0)
    gen = Generator()
    image = np.random.default_rng(3).integers(0, 256, (336, 392, 3), np.uint8)
    whole = Cartoonizer(gen, max_short_side=0).cartoonize(image)
    tiler = Cartoonizer(gen, max_short_side=0, tile_core=128, tile_margin=96)
    calls = []
    original = tiler._run
    tiler._run = lambda x: calls.append(x.shape) or original(x)
    tiled = tiler.cartoonize(image)
    assert len(calls) == 3 * 4  # ceil(336 / 128) rows, ceil(392 / 128) columns
    assert max(c[1] for c in calls) <= 128 + 2 * 96
    assert np.abs(whole.astype(int) - tiled).max() <= 1


def test_tiled_bytes_equal_the_float_path_byte_for_byte():
    """Converting window by window gives exactly the bytes of converting the whole float
    output, tiled or whole, one image or a batch of frames."""
    tf.random.set_seed(1)
    gen = Generator()
    image = np.random.default_rng(5).integers(0, 256, (336, 392, 3), np.uint8)
    for cartoonizer in (Cartoonizer(gen, max_short_side=0, tile_core=128, tile_margin=96),
                        Cartoonizer(gen, max_short_side=0)):
        expected = to_uint8(cartoonizer.run_float(to_unit_range(image)))
        np.testing.assert_array_equal(cartoonizer.cartoonize(image), expected)
        for frame in cartoonizer.cartoonize_batch([image, image]):
            np.testing.assert_array_equal(frame, expected)


def test_tiled_run_never_holds_a_float_copy_of_the_image():
    """Memory beyond the output bytes is that of a few windows: a full-image float32 array
    (12 bytes a pixel) alone would exceed the bound."""
    import tracemalloc

    core, margin = 128, 32
    image = np.random.default_rng(6).integers(0, 256, (1536, 1024, 3), np.uint8)
    cartoonizer = Cartoonizer(max_short_side=0, tile_core=core, tile_margin=margin,
                              runner=lambda x: np.tanh(x))
    window_floats = (core + 2 * margin) ** 2 * 3 * 4
    tracemalloc.start()
    try:
        out = cartoonizer.cartoonize(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(out, to_uint8(np.tanh(to_unit_range(image))))
    assert peak < image.size + 10 * window_floats < image.size * 4


def test_too_small_image_raises():
    with pytest.raises(ValueError, match="too small"):
        Cartoonizer(Generator()).cartoonize(np.zeros((5, 40, 3), np.uint8))
