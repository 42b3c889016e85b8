"""The Inception loader on a stand-in frozen graph, statistics caches, and evaluate.py end to end."""
import hashlib
import io
import json
import subprocess
import sys
import tarfile

import cv2
import numpy as np
import pytest

from tests.conftest import REPO
from tests.inception_standin import standin_graph_bytes, write_standin
from whitebox.cli import evaluate
from whitebox.evaluate import distances, inception, metrics
from whitebox.evaluate.distances import MetricsError


@pytest.fixture(scope="session")
def standin(tmp_path_factory):
    """(pb, tgz) of the stand-in graph: resize to 64x64, 16 features."""
    return write_standin(tmp_path_factory.mktemp("inception"))


@pytest.fixture(scope="session")
def graph(standin):
    return inception.InceptionGraph(standin[0], batch_size=4)


def random_images(seed, sizes):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), np.uint8) for h, w in sizes]


def image_folder(folder, seed, count=6, shade=0):
    """PNG files of smooth random colour fields (sizes vary), plus nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        small = rng.integers(0, 256, (4, 4, 3)).astype(np.float32)
        big = cv2.resize(small, (48 + 4 * i, 40 + 2 * i), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"{i:02d}.png"), np.clip(big + shade, 0, 255).astype(np.uint8))
    return folder


def test_pb_and_tgz_load_to_the_same_network(standin, graph):
    from_tgz = inception.InceptionGraph(standin[1], batch_size=4)
    pb_bytes = standin[0].read_bytes()
    assert graph.sha256 == from_tgz.sha256 == hashlib.sha256(pb_bytes).hexdigest()
    assert graph.image_size == [64, 64] and graph.feature_dim == 16
    images = random_images(0, [(30, 40), (64, 64)])
    np.testing.assert_array_equal(graph.embed(images), from_tgz.embed(images))
    info = graph.describe()
    assert info["sha256"] == graph.sha256 and info["image_size"] == [64, 64]


def test_batched_features_equal_the_one_image_path(graph, standin):
    images = random_images(1, [(30, 40), (64, 64), (100, 20), (7, 9), (130, 170), (64, 65)])
    one_by_one = np.stack([graph.embed_one(image) for image in images])
    assert graph.embed(images).shape == (6, 16)          # batches of 4 then 2
    # Batches of another size may take other kernels: the features agree to 1e-5 of their scale.
    tol = 1e-5 * np.abs(one_by_one).max()
    np.testing.assert_allclose(graph.embed(images), one_by_one, rtol=0, atol=tol)
    single = inception.InceptionGraph(standin[0], batch_size=1)
    np.testing.assert_allclose(single.embed(images), one_by_one, rtol=0, atol=tol)
    # rows differ between images: the batch really carries six different pictures
    assert np.abs(one_by_one[0] - one_by_one[1]).max() > 1e-4


def test_the_graph_resizes_any_size(graph):
    flat = [np.full((h, w, 3), (200, 30, 90), np.uint8) for h, w in [(8, 8), (64, 64), (90, 33)]]
    features = graph.embed(flat)
    np.testing.assert_allclose(features, features[[0, 0, 0]], atol=1e-5)


def test_folder_images_are_converted_from_bgr_to_rgb(graph, tmp_path):
    image = random_images(2, [(40, 50)])[0]                # as OpenCV holds it: BGR
    cv2.imwrite(str(tmp_path / "x.png"), image)
    cv2.imwrite(str(tmp_path / "y.png"), image[::-1])
    features, skipped = metrics.embed_paths([tmp_path / "x.png"], graph, progress=False)
    expected = graph.embed_one(image[:, :, ::-1])
    np.testing.assert_allclose(features[0], expected, atol=1e-5 * np.abs(expected).max())
    assert np.abs(features[0] - graph.embed_one(image)).max() > 1e-4
    assert skipped == []


def test_oversized_header_and_odd_names_are_skipped_on_one_line(graph, tmp_path, capsys):
    from tests.test_image_io import png_header_only

    cv2.imwrite(str(tmp_path / "x.png"), random_images(2, [(40, 50)])[0])
    (tmp_path / "huge\x1b.png").write_bytes(png_header_only(40000, 40000))
    lines = []
    features, skipped = metrics.embed_paths([tmp_path / "huge\x1b.png", tmp_path / "x.png"],
                                            graph, progress=False, say=lines.append)
    assert features.shape[0] == 1 and len(skipped) == 1
    assert skipped[0][1].startswith("image too large (40000 x 40000 declared)")
    assert len(lines) == 1 and "\x1b" not in lines[0]
    assert lines[0].startswith(f"skipped {tmp_path}/huge\\x1b.png: image too large")
    assert capsys.readouterr() == ("", "")  # the library prints nothing itself


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.pb", "no such file"),
    (lambda d: (d / "junk.pb").write_bytes(b"\x00\xff not a graph") and d / "junk.pb",
     "not a frozen TensorFlow GraphDef"),
    (lambda d: d, "is a folder"),
])
def test_bad_network_files_give_clear_errors(tmp_path, make, message):
    with pytest.raises(MetricsError, match=message):
        inception.InceptionGraph(make(tmp_path))


def test_archive_without_the_graph_and_graph_without_pool3(tmp_path):
    tgz = tmp_path / "inception-2015-12-05.tgz"
    with tarfile.open(tgz, "w:gz") as archive:
        info = tarfile.TarInfo("README")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(MetricsError, match="holds no classify_image_graph_def.pb"):
        inception.InceptionGraph(tgz)
    import tensorflow as tf

    g = tf.Graph()
    with g.as_default():
        tf.expand_dims(tf.zeros([4, 4, 3]), 0, name="ExpandDims")
    other = tmp_path / "other.pb"
    other.write_bytes(g.as_graph_def().SerializeToString())
    with pytest.raises(MetricsError, match="no tensor pool_3:0"):
        inception.InceptionGraph(other)


def test_cache_gives_the_folder_result_and_records_the_network(graph, tmp_path, standin):
    a = metrics.embed_folder(image_folder(tmp_path / "a", 3, 12), graph, progress=False)
    b = metrics.embed_folder(image_folder(tmp_path / "b", 4, 12, shade=40), graph,
                             progress=False)
    metrics.save_cache(tmp_path / "b.npz", b)
    cached = metrics.load_cache(tmp_path / "b.npz")
    assert cached.count == 12 and cached.sha256 == graph.sha256
    assert cached.extractor == graph.name and cached.image_size == [64, 64]
    direct, via_cache = metrics.compare(a, b, kid=True), metrics.compare(a, cached, kid=True)
    assert direct["fid"] > 1e-3
    assert via_cache["fid"] == pytest.approx(direct["fid"], rel=1e-9)
    assert via_cache["kid"] == direct["kid"]
    metrics.save_cache(tmp_path / "lean.npz", b, keep_features=False)
    lean = metrics.load_cache(tmp_path / "lean.npz")
    assert metrics.compare(a, lean)["fid"] == pytest.approx(direct["fid"], rel=1e-9)
    with pytest.raises(MetricsError, match="KID needs features"):
        metrics.compare(a, lean, kid=True)
    other_pb = tmp_path / "other.pb"
    other_pb.write_bytes(standin_graph_bytes(seed=1))
    other = metrics.embed_folder(tmp_path / "a", inception.InceptionGraph(other_pb),
                                 progress=False)
    with pytest.raises(MetricsError, match="different networks"):
        metrics.compare(other, cached)


def run_cli(argv, capsys):
    code = evaluate.main(argv)
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 else None), out.err


def test_cli_fid_stats_and_caches(tmp_path, standin, capsys):
    a = image_folder(tmp_path / "a", 5, 8)
    (a / "broken.jpg").write_bytes(b"not a jpeg")
    b = image_folder(tmp_path / "b", 6, 8, shade=60)
    pb, tgz = map(str, standin)
    code, report, err = run_cli(["fid", str(a), str(b), "--inception", tgz, "--kid", "-q",
                                 "--kid-subsets", "5"], capsys)
    assert code == 0
    assert report["a"]["n"] == 8 and report["a"]["skipped"] == 1 and report["b"]["n"] == 8
    assert "skipped" in err and "broken.jpg" in err
    assert report["extractor"]["sha256"] == hashlib.sha256(standin[0].read_bytes()).hexdigest()
    assert report["extractor"]["image_size"] == [64, 64]
    assert report["fid"] > 1e-3 and report["kid"]["subsets"] == 5
    assert any("not the 2015-12-05 Inception graph" in w for w in report["warnings"])
    assert any("singular" in w for w in report["warnings"])

    code, stats, _ = run_cli(["stats", str(b), "--inception", pb, "-o",
                              str(tmp_path / "b.npz"), "-q"], capsys)
    assert code == 0 and stats["set"]["n"] == 8
    code, mixed, _ = run_cli(["fid", str(a), str(tmp_path / "b.npz"), "--inception", pb,
                              "-q"], capsys)
    assert mixed["fid"] == pytest.approx(report["fid"], rel=1e-9)
    assert mixed["b"]["kind"] == "cache"
    code, both, _ = run_cli(["fid", str(tmp_path / "b.npz"), str(tmp_path / "b.npz")],
                            capsys)
    assert code == 0 and abs(both["fid"]) < 1e-6
    assert both["extractor"]["sha256"] == report["extractor"]["sha256"]

    code, _, err = run_cli(["fid", str(a), str(b)], capsys)
    assert code == 2 and "--inception is needed" in err
    code, _, err = run_cli(["fid", str(a), str(b), "--inception", str(tmp_path / "no.pb")],
                           capsys)
    assert code == 2 and "no such file" in err


def test_cli_paper_cartoonizes_as_cartoonize_py(tmp_path, standin, tf1_checkpoint, capsys):
    import cartoonize

    photos = image_folder(tmp_path / "photos", 7, 5)
    (photos / "bad.png").write_bytes(b"junk")
    cartoons = image_folder(tmp_path / "cartoons", 8, 7, shade=-50)
    out = tmp_path / "cartoonized"
    md = tmp_path / "table.md"
    code, report, err = run_cli(
        ["paper", "--weights", str(tf1_checkpoint[0]), "--photos", str(photos),
         "--cartoons", str(cartoons), "--inception", str(standin[1]), "--output", str(out),
         "--format", "png", "--kid", "--kid-subsets", "3", "--markdown", str(md), "-q"],
        capsys)
    assert code == 0, err
    assert report["cartoonize"]["photos"] == 6 and report["cartoonize"]["failed"] == 1
    assert report["sets"]["cartoonized"]["n"] == 5 and report["sets"]["cartoons"]["n"] == 7
    assert report["sets"]["photos"]["n"] == 5 and report["sets"]["photos"]["skipped"] == 1
    assert report["fid_to_cartoon"] > 0 and report["fid_to_photo"] > 0
    assert report["fid_to_cartoon"] != report["fid_to_photo"]
    assert "kid_to_photo" in report
    table = md.read_text()
    assert "| FID to cartoon |" in table and "101.31" in table and "28.79" in table
    assert report["extractor"]["sha256"] in table and "64x64" in table

    reference = tmp_path / "reference"
    assert cartoonize.main(["-i", str(photos), "-o", str(reference), "--format", "png",
                            "--weights", str(tf1_checkpoint[0]), "-q"]) == 1
    capsys.readouterr()
    names = sorted(p.name for p in reference.iterdir())
    assert names == sorted(p.name for p in out.iterdir()) and len(names) == 5
    for name in names:
        assert (out / name).read_bytes() == (reference / name).read_bytes()


def test_script_prints_only_json_on_stdout(tmp_path, standin):
    a = image_folder(tmp_path / "a", 9, 3)
    result = subprocess.run(
        [sys.executable, str(REPO / "evaluate.py"), "fid", str(a), str(a), "--inception",
         str(standin[0])], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert abs(report["fid"]) < 1e-6 and report["a"]["n"] == 3


def test_keras_files_go_to_the_keras_extractor(tmp_path):
    with pytest.raises(MetricsError, match="no such file"):
        inception.load_extractor(tmp_path / "inception_v3_notop.h5")
    with pytest.raises(MetricsError, match="no such file"):
        inception.load_extractor(tmp_path / "inception-2015-12-05.tgz")


def test_the_removed_batchnorm_op_is_rewritten_to_the_same_arithmetic(tmp_path, standin):
    by_hand = tmp_path / "by_hand.pb"
    by_hand.write_bytes(standin_graph_bytes(batchnorm_op=False))
    reference = inception.InceptionGraph(by_hand, batch_size=4)
    with_op = inception.InceptionGraph(standin[0], batch_size=4)
    assert reference.describe()["batchnorm_nodes_rewritten"] == 0
    assert with_op.describe()["batchnorm_nodes_rewritten"] == 1
    images = random_images(3, [(50, 60), (64, 64), (20, 90)])
    np.testing.assert_allclose(with_op.embed(images), reference.embed(images), rtol=1e-6,
                               atol=1e-6)


def test_paper_with_missing_weights_is_a_clear_error(tmp_path, standin, capsys):
    photos = image_folder(tmp_path / "photos", 10, 2)
    code, _, err = run_cli(["paper", "--weights", str(tmp_path / "nothing"), "--photos",
                            str(photos), "--cartoons", str(photos), "--inception",
                            str(standin[0]), "-q"], capsys)
    assert code == 2 and "could not load the weights" in err and "nothing" in err


def nested_photos(root):
    """A photo tree: 3 top-level PNGs, 3 in sub/ (same names), 2 in sub/deeper/, and a 4x4
    top-level photo that the network reads but cartoonize.py refuses (smaller than 8x8)."""
    image_folder(root, 11, 3)
    image_folder(root / "sub", 12, 3, shade=30)
    image_folder(root / "sub" / "deeper", 13, 2, shade=-30)
    cv2.imwrite(str(root / "tiny.png"), np.full((4, 4, 3), 90, np.uint8))
    return root


def test_paper_recursive_uses_the_same_photos_on_both_sides(tmp_path, standin, tf1_checkpoint,
                                                            graph, capsys):
    photos = nested_photos(tmp_path / "photos")
    cartoons = image_folder(tmp_path / "cartoons", 14, 4, shade=-50)
    out = tmp_path / "cartoonized"
    argv = ["paper", "--weights", str(tf1_checkpoint[0]), "--photos", str(photos),
            "--cartoons", str(cartoons), "--inception", str(standin[0]), "--output", str(out),
            "--format", "png", "-q"]
    code, report, err = run_cli(argv + ["--recursive"], capsys)
    assert code == 0, err
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == ["00.png", "01.png", "02.png", "sub/00.png", "sub/01.png", "sub/02.png",
                       "sub/deeper/00.png", "sub/deeper/01.png"]
    counts = report["cartoonize"]
    assert (counts["photos"], counts["cartoonized"], counts["failed"]) == (9, 8, 1)
    assert counts["not_cartoonized"] == [str(photos / "tiny.png")]
    assert report["sets"]["cartoonized"]["n"] == 8 and report["sets"]["photos"]["n"] == 9
    assert any("of the 9 photos given, 8 went in as cartoonized images and 9 as photos" in w
               and "not cartoonized: 1" in w for w in report["warnings"])
    assert "of the 9 photos given" in report["markdown"]
    # FID to photo is between exactly these two sets: the whole tree and its cartoons
    mine, _ = metrics.embed_paths(sorted(photos.rglob("*.png")), graph, progress=False)
    theirs, _ = metrics.embed_paths([out / name for name in written], graph, progress=False)
    expected = distances.frechet_distance(*distances.feature_statistics(theirs),
                                          *distances.feature_statistics(mine))
    assert report["fid_to_photo"] == pytest.approx(expected, rel=1e-6)

    # without --recursive both sides hold the top-level photos only
    code, flat, err = run_cli(argv + ["--output", str(tmp_path / "flat")], capsys)
    assert code == 0, err
    assert (flat["cartoonize"]["photos"], flat["sets"]["photos"]["n"],
            flat["sets"]["cartoonized"]["n"]) == (4, 4, 3)


def test_paper_ignores_stale_outputs_and_its_own_output_inside_photos(tmp_path, standin,
                                                                      tf1_checkpoint, capsys,
                                                                      monkeypatch):
    from whitebox.infer import runtimes

    monkeypatch.setattr(runtimes, "cache_root", lambda: tmp_path / "cache")  # a first run
    photos = image_folder(tmp_path / "photos", 15, 4)
    cartoons = image_folder(tmp_path / "cartoons", 16, 4, shade=-50)
    out = photos / "cartoonized"               # inside the photos, as a user might put it
    argv = ["paper", "--weights", str(tf1_checkpoint[0]), "--photos", str(photos),
            "--cartoons", str(cartoons), "--inception", str(standin[0]), "--output", str(out),
            "--format", "png", "--recursive", "-q"]
    code, first, err = run_cli(argv, capsys)
    assert code == 0, err
    assert len(err.splitlines()) == 1 and err.startswith("done 4, skipped 0, failed 0 in "), err
    assert first["sets"]["photos"]["n"] == 4 and first["sets"]["cartoonized"]["n"] == 4
    assert first["warnings"] == [w for w in first["warnings"] if "photos given" not in w]
    (photos / "03.png").write_bytes(b"damaged since the first run")
    before = (out / "00.png").read_bytes()
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"{out} already holds 4 of the outputs" in err and "--overwrite" in err
    assert (out / "00.png").read_bytes() == before
    code, second, err = run_cli(argv + ["--overwrite"], capsys)
    assert code == 0, err
    assert (out / "03.png").is_file()          # the first run's output is still there...
    assert second["sets"]["cartoonized"]["n"] == 3     # ...but not counted as this run's
    assert second["cartoonize"]["not_cartoonized"] == [str(photos / "03.png")]
    assert second["sets"]["photos"]["n"] == 3 and second["sets"]["photos"]["skipped"] == 1
    assert any("of the 4 photos given, only 3 went in on each side" in w
               for w in second["warnings"])


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_paper_refuses_outputs_that_would_replace_or_join_an_input(tmp_path, standin,
                                                                   tf1_checkpoint, capsys):
    photos = image_folder(tmp_path / "photos", 17, 5)
    cartoons = image_folder(tmp_path / "cartoons", 18, 4, shade=-50)
    (tmp_path / "link").symlink_to(cartoons)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "01.png").symlink_to(cartoons / "03.png")
    kept = snapshot(photos), snapshot(cartoons)
    base = ["paper", "--weights", str(tf1_checkpoint[0]), "--photos", str(photos),
            "--cartoons", str(cartoons), "--inception", str(standin[0]), "-q"]
    for output, extra, reason in [
            (cartoons, [], f"output {cartoons / '00.png'} would overwrite an input"),
            (tmp_path / "link", ["--overwrite"], "would overwrite an input"),
            (tmp_path / "out", ["--overwrite"], f"output {tmp_path / 'out' / '01.png'} would "
                                                f"overwrite an input"),
            (photos, ["--overwrite"], f"output {photos / '00.png'} would overwrite an input"),
            (cartoons, ["--format", "jpg"], f"output {cartoons / '00.jpg'} would join the "
                                            f"cartoon set {cartoons}")]:
        code, _, err = run_cli(base + ["--output", str(output), *extra], capsys)
        assert code == 2 and len(err.splitlines()) == 1, (output, err)
        assert err.startswith(f"evaluate.py: error: {photos}/") and reason in err, err
        assert "choose another --output" in err
        assert (snapshot(photos), snapshot(cartoons)) == kept
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["01.png"]
    (tmp_path / "a_file").write_text("the user's")
    code, _, err = run_cli(base + ["--output", str(tmp_path / "a_file")], capsys)
    assert code == 2 and err == f"evaluate.py: error: --output {tmp_path / 'a_file'} is a file, not a folder\n"


def test_paper_refuses_a_markdown_file_that_is_an_input_or_an_output(tmp_path, standin,
                                                                      tf1_checkpoint, capsys):
    photos = image_folder(tmp_path / "photos", 17, 3)
    cartoons = image_folder(tmp_path / "cartoons", 18, 3, shade=-50)
    np.savez(tmp_path / "cartoons.npz", mean=np.zeros(3))
    kept = snapshot(photos), snapshot(cartoons), (tmp_path / "cartoons.npz").read_bytes()
    base = ["paper", "--weights", str(tf1_checkpoint[0]), "--photos", str(photos),
            "--inception", str(standin[0]), "--output", str(tmp_path / "out"), "-q"]
    for markdown, cartoon_set in [(photos / "00.png", cartoons),
                                  (tmp_path / "x" / ".." / "cartoons" / "01.png", cartoons),
                                  (tmp_path / "cartoons.npz", tmp_path / "cartoons.npz"),
                                  (tmp_path / "out" / "02.png", cartoons)]:
        code, _, err = run_cli(base + ["--cartoons", str(cartoon_set), "--markdown",
                                       str(markdown)], capsys)
        assert code == 2 and err == (f"evaluate.py: error: --markdown {markdown} would overwrite an input or "
                                     f"an output of the run (choose another file)\n"), err
    assert kept == (snapshot(photos), snapshot(cartoons),
                    (tmp_path / "cartoons.npz").read_bytes())
    assert not (tmp_path / "out").exists()


def test_stats_replaces_a_cache_but_not_another_file(tmp_path, standin, capsys):
    photos = image_folder(tmp_path / "photos", 17, 3)
    (tmp_path / "notes.npz").write_text("the user's")
    (tmp_path / "link.npz").symlink_to(tmp_path / "notes.npz")
    base = ["stats", str(photos), "--inception", str(standin[0]), "-q", "-o"]
    for name in ["notes.npz", "link.npz"]:
        code, _, err = run_cli(base + [str(tmp_path / name)], capsys)
        assert (code, err) == (2, f"evaluate.py: error: {tmp_path / name} exists and is not a statistics "
                                  f"cache; choose a new name\n")
    assert (tmp_path / "notes.npz").read_text() == "the user's"
    for _ in range(2):  # written, then replaced
        assert run_cli(base + [str(tmp_path / "cache.npz")], capsys)[0] == 0


def damaged_archives(folder, standin):
    """(file, expected reason) for .tgz files that cannot give the graph."""
    good = standin[1].read_bytes()
    cases = {"random.tgz": (np.random.default_rng(0).bytes(3000),
                            "not a .tgz archive (neither gzip-compressed nor a tar archive)"),
             "empty.tgz": (b"", "not a .tgz archive (empty file)"),
             "gzip.tgz": (__import__("gzip").compress(b"x" * 3000),
                          "not a .tgz archive (gzip-compressed, but not a tar archive inside)"),
             "cut.tgz": (good[:len(good) // 2], "damaged .tgz archive (")}
    for name, (data, _) in cases.items():
        (folder / name).write_bytes(data)
    return [(folder / name, reason) for name, (_, reason) in cases.items()]


def test_damaged_tgz_is_one_line_naming_the_file(tmp_path, standin, capsys):
    a = image_folder(tmp_path / "a", 17, 2)
    for path, reason in damaged_archives(tmp_path, standin):
        code, _, err = run_cli(["fid", str(a), str(a), "--inception", str(path), "-q"], capsys)
        assert code == 2
        assert err.strip() == err.strip().splitlines()[0], err      # one line
        assert err.startswith(f"evaluate.py: error: {path}: {reason}"), err


def bad_caches(folder):
    """(file, expected reason) for .npz files that are not statistics caches."""
    fields = dict(mean=np.zeros(16), cov=np.eye(16), count=np.int64(5), extractor=np.str_("x"),
                  sha256=np.str_("y"), image_size=np.array([64, 64]))
    np.savez(folder / "good.npz", **fields)
    good = (folder / "good.npz").read_bytes()
    (folder / "text.npz").write_bytes(b"garbage")
    (folder / "cut.npz").write_bytes(good[:len(good) // 2])
    np.save(folder / "array.npy", np.zeros(3))
    (folder / "array.npz").write_bytes((folder / "array.npy").read_bytes())
    np.savez(folder / "shapes.npz", **dict(fields, mean=np.zeros(3)))
    np.savez(folder / "count.npz", **dict(fields, count=np.array([1, 2])))
    np.savez(folder / "partial.npz", mean=np.zeros(16))
    np.savez(folder / "nan_mean.npz", **dict(fields, mean=np.full(16, np.nan)))
    np.savez(folder / "inf_cov.npz", **dict(fields, cov=np.where(np.eye(16), np.inf, 0.0)))
    np.savez(folder / "nan_cov.npz", **dict(fields, cov=np.full((16, 16), np.nan)))
    np.savez(folder / "oblong_cov.npz", **dict(fields, cov=np.zeros((16, 8))))
    np.savez(folder / "flat_cov.npz", **dict(fields, cov=np.zeros(16)))
    np.savez(folder / "nan_features.npz", **dict(fields, features=np.full((5, 16), np.nan)))
    return [(folder / "text.npz", "not a zip archive"), (folder / "cut.npz", "not a zip archive"),
            (folder / "array.npz", "not a zip archive"),
            (folder / "shapes.npz", "covariance of shape (16, 16) for 3 features"),
            (folder / "count.npz", "count array([1, 2])"),
            (folder / "partial.npz", "missing count, cov, extractor, image_size, sha256"),
            (folder / "nan_mean.npz", "mean has NaN or infinite values"),
            (folder / "inf_cov.npz", "covariance has NaN or infinite values"),
            (folder / "nan_cov.npz", "covariance has NaN or infinite values"),
            (folder / "oblong_cov.npz", "covariance of shape (16, 8) for 16 features"),
            (folder / "flat_cov.npz", "covariance of shape (16,) for 16 features"),
            (folder / "nan_features.npz", "features have NaN or infinite values")]


def test_garbage_caches_and_unwritable_outputs_are_one_line(tmp_path, standin, capsys):
    a = image_folder(tmp_path / "a", 18, 3)
    for path, reason in bad_caches(tmp_path)[6:]:   # against a cache of the same network
        code, _, err = run_cli(["fid", str(tmp_path / "good.npz"), str(path)], capsys)
        assert code == 2 and err.strip() == f"evaluate.py: error: {path}: not a statistics cache ({reason})"
    for path, reason in bad_caches(tmp_path):
        code, _, err = run_cli(["fid", str(a), str(path), "--inception", str(standin[0]),
                                "-q"], capsys)
        assert code == 2 and err.strip() == err.strip().splitlines()[0], err
        assert err.startswith(f"evaluate.py: error: {path}: ") and reason in err, err
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "folder.npz").mkdir()
    for output, reason in [(tmp_path / "file.txt" / "x.npz", "file.txt is not a folder"),
                           (tmp_path / "folder.npz", "is a folder")]:
        code, _, err = run_cli(["stats", str(a), "--inception", str(standin[0]), "-o",
                                str(output), "-q"], capsys)
        assert code == 2 and err.strip() == err.strip().splitlines()[0], err
        assert err.startswith(f"evaluate.py: error: {output}: ") and reason in err, err
    with pytest.raises(MetricsError, match="is not a folder"):
        metrics.save_cache(tmp_path / "file.txt" / "x.npz",
                           metrics.load_cache(tmp_path / "good.npz"))
    code, _, err = run_cli(["fid", str(tmp_path / "good.npz"), str(tmp_path / "good.npz"),
                            "--inception", str(tmp_path / "missing.h5"), "-q"], capsys)
    assert code == 2 and err.strip() == (f"evaluate.py: error: {tmp_path / 'missing.h5'}: unreadable "
                                         f"(No such file or directory)")


def test_paper_refuses_an_unwritable_markdown_before_cartoonizing(tmp_path, standin, capsys):
    photos = image_folder(tmp_path / "photos", 19, 2)
    (tmp_path / "file.txt").write_text("x")
    code, _, err = run_cli(["paper", "--weights", str(tmp_path / "never-loaded"), "--photos",
                            str(photos), "--cartoons", str(photos), "--inception",
                            str(standin[0]), "--markdown", str(tmp_path / "file.txt" / "t.md"),
                            "-q"], capsys)
    assert code == 2 and err.strip() == (f"evaluate.py: error: {tmp_path / 'file.txt' / 't.md'}: cannot "
                                         f"write ({tmp_path / 'file.txt'} is not a folder)")


def test_folders_are_embedded_by_the_one_extension_set(graph, tmp_path):
    from tests.test_image_io import mixed_folder

    folder = mixed_folder(tmp_path / "set")
    fset = metrics.embed_folder(folder, graph, progress=False)
    assert fset.count == 3 and fset.skipped == []
    features, _ = metrics.embed_paths([folder / n for n in ["a.png", "b.ppm", "c.gif"]], graph,
                                      progress=False)
    np.testing.assert_array_equal(fset.features, features)
    with pytest.raises(MetricsError, match="missing: no such folder"):
        metrics.embed_folder(tmp_path / "missing", graph, progress=False)
