"""Data lists, the face/scenery schedule, batch sampling, and every bad-data case."""
import cv2
import numpy as np
import pytest

from tests.training_helpers import make_dataset, write_images
from whitebox.train import data


@pytest.fixture
def lists(tmp_path):
    root = make_dataset(tmp_path / "dataset", count=4, size=32)
    out = tmp_path / "lists"
    counts = data.make_lists(data.folders_under(root), out)
    assert counts == {d: 4 for d in data.DOMAINS}
    return out


def test_make_lists_writes_relative_paths_that_resolve(lists, tmp_path):
    text = (lists / "photo_face.txt").read_text().splitlines()
    assert len(text) == 4 and not text[0].startswith("/")
    paths = data.read_list(lists / "photo_face.txt")
    assert paths == sorted(str((tmp_path / "dataset/photo_face" / f"img{k:03d}.png").resolve())
                           for k in range(4))
    data.make_lists({"cartoon_face": tmp_path / "dataset/cartoon_face"}, tmp_path / "abs",
                    absolute=True)
    assert (tmp_path / "abs/cartoon_face.txt").read_text().startswith("/")


def test_schedule_over_ten_iterations(lists):
    loaded, use_face, note = data.load_lists(lists, with_cartoons=True)
    assert use_face and note == ""
    sampler = data.BatchSampler(loaded, 2, 32, seed=0, use_face=True, with_cartoons=True)
    domains = [sampler.domain(i) for i in range(10)]
    assert domains == ["face", "scenery", "scenery", "scenery", "scenery"] * 2
    for i in range(10):
        photos, cartoons = sampler.paths(i)
        assert all(f"/photo_{domains[i]}/" in p for p in photos)
        assert all(f"/cartoon_{domains[i]}/" in p for p in cartoons)
        assert len(set(photos)) == 2 and len(set(cartoons)) == 2   # no repeats in a batch


def test_batches_are_bgr_in_range_and_depend_on_seed_and_iteration(lists, tmp_path):
    loaded, _, _ = data.load_lists(lists, with_cartoons=True)
    sampler = data.BatchSampler(loaded, 2, 32, seed=3, use_face=True, with_cartoons=True)
    photos, cartoons = sampler.batch(1)
    assert photos.shape == cartoons.shape == (2, 32, 32, 3) and photos.dtype == np.float32
    first = sampler.paths(1)[0][0]
    np.testing.assert_allclose(photos[0], cv2.imread(first).astype(np.float32) / 127.5 - 1)
    again = data.BatchSampler(loaded, 2, 32, seed=3, use_face=True, with_cartoons=True)
    assert again.paths(7) == sampler.paths(7)
    draws = {tuple(sampler.paths(i)[0]) for i in range(1, 5)}
    assert len(draws) > 1


def test_dataset_yields_iterations_in_order(lists):
    loaded, _, _ = data.load_lists(lists, with_cartoons=False)
    sampler = data.BatchSampler(loaded, 2, 32, seed=0, use_face=True, with_cartoons=False)
    items = list(sampler.dataset(3, 6))
    assert [int(it[0]) for it in items] == [3, 4, 5]
    np.testing.assert_array_equal(items[1][1].numpy(), sampler.batch(4)[0])


def test_larger_images_are_randomly_cropped(tmp_path):
    paths = write_images(tmp_path / "big", 3, size=(40, 48))
    full = cv2.imread(str(paths[0])).astype(np.float32) / 127.5 - 1
    crops = [data.read_image(str(paths[0]), 32, np.random.default_rng(s)) for s in range(6)]
    assert all(c.shape == (32, 32, 3) for c in crops)
    assert len({c.tobytes() for c in crops}) > 1
    # Each crop is a window of the image.
    c = crops[0]
    found = any(np.array_equal(full[t:t + 32, l:l + 32], c)
                for t in range(9) for l in range(17))
    assert found


def test_missing_face_pair_uses_scenery_only(tmp_path):
    root = make_dataset(tmp_path / "dataset", count=2, size=32, face=False)
    data.make_lists(data.folders_under(root), tmp_path / "lists")
    loaded, use_face, note = data.load_lists(tmp_path / "lists", with_cartoons=True)
    assert not use_face and "scenery" in note
    sampler = data.BatchSampler(loaded, 2, 32, seed=0, use_face=False, with_cartoons=True)
    assert {sampler.domain(i) for i in range(10)} == {"scenery"}


def test_partial_face_pair_is_an_error(lists):
    (lists / "cartoon_face.txt").unlink()
    with pytest.raises(data.DataError, match="cartoon_face"):
        data.load_lists(lists, with_cartoons=True)
    # Pre-training needs only photos.
    assert data.load_lists(lists, with_cartoons=False)[1]


def test_empty_list_and_missing_files_are_named(lists):
    (lists / "photo_scenery.txt").write_text("\n# nothing\n")
    with pytest.raises(data.DataError, match="photo_scenery.txt: the list is empty"):
        data.load_lists(lists, with_cartoons=False)
    (lists / "photo_scenery.txt").write_text("nowhere/a.png\n")
    with pytest.raises(data.DataError, match="nowhere/a.png"):
        data.load_lists(lists, with_cartoons=False)
    (lists / "photo_scenery.txt").unlink()
    with pytest.raises(data.DataError, match="no such list file"):
        data.load_lists(lists, with_cartoons=False)


def test_small_unreadable_and_too_few_images(tmp_path):
    small = write_images(tmp_path / "small", 1, size=(32, 24))[0]
    with pytest.raises(data.DataError, match=r"small/img000.png: 24x32 is smaller"):
        data.read_image(str(small), 32, np.random.default_rng(0))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(data.DataError, match="broken.png: unreadable"):
        data.read_image(str(broken), 32, np.random.default_rng(0))
    with pytest.raises(data.DataError, match="fewer than the batch size"):
        data.BatchSampler({"photo_scenery": [str(small)]}, 2, 32, 0, False, False)
    with pytest.raises(data.DataError, match="no image files"):
        (tmp_path / "empty").mkdir()
        data.make_lists({"photo_scenery": tmp_path / "empty"}, tmp_path / "out")


def test_bad_image_inside_the_tf_data_pipeline_reports_the_file(tmp_path):
    good = write_images(tmp_path / "p", 2, size=32)
    small = write_images(tmp_path / "q", 2, size=16)
    sampler = data.BatchSampler({"photo_scenery": [str(p) for p in good + small]}, 4, 32, 0,
                                False, False)
    with pytest.raises(Exception):
        list(sampler.dataset(0, 1))
    assert isinstance(sampler.last_error, data.DataError)
    assert "smaller than the 32x32 patch" in str(sampler.last_error)


def test_oversized_header_in_a_list_names_the_file_in_training(tmp_path):
    from tests.test_image_io import png_header_only
    from whitebox.train import training
    from whitebox.train.config import PretrainConfig

    odd = tmp_path / "huge\nname.png"
    odd.write_bytes(png_header_only(40000, 40000))
    with pytest.raises(data.DataError, match=r"huge\\nname.png: unreadable image \(image too "
                                             r"large \(40000 x 40000 declared\)"):
        data.read_image(str(odd), 32, np.random.default_rng(0))
    good = write_images(tmp_path / "p", 3, size=32)
    huge = tmp_path / "p" / "huge.png"
    huge.write_bytes(png_header_only(40000, 40000))
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "photo_scenery.txt").write_text("\n".join(map(str, good + [huge])) + "\n")
    config = PretrainConfig(data_lists=str(lists), out_dir=str(tmp_path / "pre"), batch_size=4,
                            patch_size=32, iterations=1)
    with pytest.raises(data.DataError, match=r"p/huge.png: unreadable image \(image too large "
                                             r"\(40000 x 40000 declared\)"):
        training.run(config, echo=False, progress=False)


def test_make_lists_uses_the_one_extension_set(tmp_path):
    from tests.test_image_io import mixed_folder

    folder = mixed_folder(tmp_path / "photos")
    assert data.make_lists({"photo_scenery": folder}, tmp_path / "lists") == {"photo_scenery": 3}
    assert (tmp_path / "lists/photo_scenery.txt").read_text().splitlines() == [
        "../photos/a.png", "../photos/b.ppm", "../photos/c.gif"]
    assert data.read_image(str(folder / "c.gif"), 32, np.random.default_rng(0)).shape == \
        (32, 32, 3)
    with pytest.raises(data.DataError, match=r"missing: no such folder \(for photo_face\)"):
        data.make_lists({"photo_face": tmp_path / "missing"}, tmp_path / "lists")


def test_dataset_reads_batches_concurrently(lists, monkeypatch):
    """The next batches are read while earlier ones are still being read (parallel map)."""
    import threading
    import time
    loaded, _, _ = data.load_lists(lists, with_cartoons=False)
    sampler = data.BatchSampler(loaded, 2, 32, seed=0, use_face=True, with_cartoons=False)
    real = sampler.batch
    active, most = [0], [0]
    lock = threading.Lock()

    def slow_batch(i, *args):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.3)
        with lock:
            active[0] -= 1
        return real(i, *args)

    monkeypatch.setattr(sampler, "batch", slow_batch)
    items = list(sampler.dataset(0, 4))
    assert [int(it[0]) for it in items] == [0, 1, 2, 3]
    assert most[0] >= 2
