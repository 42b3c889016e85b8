#!/usr/bin/env python3
"""FID and KID between image sets, and the paper's two numbers for a checkpoint (see --help)."""
import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "src"))

DESCRIPTION = """\
FID (and KID) with the 2015-12-05 Inception-v3 graph, following TTUR's protocol.

  fid A B      A and B are image folders or .npz caches written by 'stats'
  stats DIR    embed a folder once and save its statistics (and features, for KID)
  paper        cartoonize --photos as cartoonize.py does, then FID to cartoon (against
               --cartoons) and FID to photo (against the same photos that were cartoonized;
               with --recursive the whole tree, mirrored under --output), beside the paper's
               values; the report warns when the two sides hold different numbers of images

--inception takes classify_image_graph_def.pb or inception-2015-12-05.tgz, fetched by you
(nothing is downloaded); a Keras InceptionV3 no-top .h5 also works but its numbers are not
comparable with published ones. Reports (JSON on stdout) state n, the extractor, its sha256
and the image size. Unreadable images are reported on stderr, skipped and counted.
Exit code: 0 done, 2 usage or file error.
"""

EPILOG = """\
examples:
  python evaluate.py stats cartoons/ --inception inception-2015-12-05.tgz -o cartoons.npz
  python evaluate.py fid outputs/ cartoons.npz --inception inception-2015-12-05.tgz --kid
  python evaluate.py paper --weights runs/x/checkpoints --photos test_photos/ \\
      --cartoons cartoons.npz --inception inception-2015-12-05.tgz
See docs/EVALUATION.md for what is and is not comparable with the paper.
"""


def parse_args(argv=None):
    from whitebox.metrics import DEFAULT_BATCH

    p = argparse.ArgumentParser(prog="evaluate.py", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def common(q, inception_required):
        q.add_argument("--inception", required=inception_required, metavar="PATH",
                       help="classify_image_graph_def.pb, inception-2015-12-05.tgz, or a "
                            "Keras InceptionV3 no-top .h5 (not comparable)")
        q.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, metavar="N",
                       help=f"images per network call (default {DEFAULT_BATCH}; 1 feeds each "
                            f"image at its own size, as TTUR; the numbers are the same)")
        q.add_argument("--recursive", "-r", action="store_true",
                       help="also take images in sub-folders")
        q.add_argument("--quiet", "-q", action="store_true", help="no progress bars")

    def kid_options(q):
        q.add_argument("--kid", action="store_true", help="also report KID (needs features)")
        q.add_argument("--kid-subsets", type=int, default=100, metavar="K",
                       help="KID rounds (default 100)")
        q.add_argument("--kid-subset-size", type=int, default=1000, metavar="M",
                       help="images drawn per side and round (default 1000, capped at n)")
        q.add_argument("--seed", type=int, default=0, help="KID sampling seed (default 0)")

    q = sub.add_parser("fid", help="FID (and KID) between two folders or caches")
    q.add_argument("a", metavar="A", help="image folder or .npz cache")
    q.add_argument("b", metavar="B", help="image folder or .npz cache")
    common(q, inception_required=False)
    kid_options(q)

    q = sub.add_parser("stats", help="save a folder's statistics cache (.npz)")
    q.add_argument("folder", metavar="DIR")
    q.add_argument("--output", "-o", required=True, metavar="FILE.npz")
    q.add_argument("--no-features", action="store_true",
                   help="store only mean and covariance (smaller; then no KID from it)")
    common(q, inception_required=True)

    q = sub.add_parser("paper", help="cartoonize, then FID to cartoon and FID to photo")
    q.add_argument("--photos", required=True, metavar="DIR", help="test photos")
    q.add_argument("--cartoons", required=True, metavar="DIR_OR_NPZ",
                   help="cartoon images (folder or cache)")
    q.add_argument("--weights", "-w", metavar="PATH",
                   help="checkpoint, as cartoonize.py --weights (default as cartoonize.py)")
    q.add_argument("--output", "-o", metavar="DIR",
                   help="keep the cartoonized photos here (default: a temporary folder)")
    q.add_argument("--format", choices=["same", "png", "jpg"], default="same",
                   help="cartoonize.py --format for the cartoonized photos (default same)")
    q.add_argument("--offline", action="store_true", help="cartoonize.py --offline")
    q.add_argument("--markdown", metavar="FILE", help="also write the Markdown table here")
    common(q, inception_required=True)
    kid_options(q)
    args = p.parse_args(argv)
    if args.command == "stats" and not args.output.lower().endswith(".npz"):
        p.error("stats --output must end with .npz")
    if args.batch_size < 1:
        p.error("--batch-size must be at least 1")
    if getattr(args, "kid", False) and (args.kid_subsets < 1 or args.kid_subset_size < 2):
        p.error("--kid-subsets must be >= 1 and --kid-subset-size >= 2")
    return args


class Extractor:
    """The network, built on first use (two caches need none)."""

    def __init__(self, path, batch_size):
        self.path, self.batch_size, self._net = path, batch_size, None

    def __call__(self):
        from whitebox.metrics import MetricsError, load_extractor

        if self._net is None:
            if self.path is None:
                raise MetricsError("--inception is needed to embed a folder")
            self._net = load_extractor(self.path, self.batch_size)
        return self._net

    def describe(self, fallback):
        """The loaded network's description, else what the cache `fallback` records."""
        from whitebox.metrics import network_sha256

        if self._net is not None:
            return self._net.describe()
        info = dict(name=fallback.extractor, sha256=fallback.sha256,
                    image_size=list(fallback.image_size), feature_dim=int(fallback.mean.size))
        if self.path is not None:
            info["file"] = str(self.path)
            if network_sha256(self.path) != fallback.sha256:
                from whitebox.metrics import MetricsError
                raise MetricsError(f"{fallback.source} was embedded by a network with sha256 "
                                   f"{fallback.sha256[:12]}..., not by {self.path}")
        return info


def command_fid(args, extractor):
    from whitebox.metrics import compare, load_set

    a = load_set(args.a, extractor, args.recursive, not args.quiet)
    b = load_set(args.b, extractor, args.recursive, not args.quiet)
    result = compare(a, b, args.kid, args.kid_subsets, args.kid_subset_size, args.seed)
    report = dict(fid=result["fid"])
    if "kid" in result:
        report["kid"] = result["kid"]
    report.update(a=a.describe(), b=b.describe(), extractor=extractor.describe(a),
                  warnings=result["warnings"])
    return report


def command_stats(args, extractor):
    from whitebox.metrics import embed_folder, save_cache

    _check_can_write(Path(args.output))
    fset = embed_folder(args.folder, extractor(), args.recursive, not args.quiet)
    save_cache(args.output, fset, keep_features=not args.no_features)
    return dict(cache=str(args.output), set=fset.describe(), extractor=extractor.describe(fset))


def _fmt(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(report):
    """The paper's two numbers beside ours, with n and the extractor under the table."""
    from whitebox.metrics import PAPER_VALUES

    sets, ext = report["sets"], report["extractor"]
    lines = ["| metric | this run | paper |", "|---|---:|---:|"]
    for key, label in [("fid_to_cartoon", "FID to cartoon"), ("fid_to_photo", "FID to photo")]:
        lines.append(f"| {label} | {_fmt(report[key])} | {_fmt(PAPER_VALUES[key])} |")
    for key, label in [("kid_to_cartoon", "KID to cartoon (×10³)"),
                       ("kid_to_photo", "KID to photo (×10³)")]:
        if key in report:
            kid = report[key]
            lines.append(f"| {label} | {kid['mean'] * 1e3:.2f} ± {kid['std'] * 1e3:.2f} | – |")
    lines += ["",
              f"n: {sets['cartoonized']['n']} cartoonized photos "
              f"({report['cartoonize']['failed']} failed), {sets['cartoons']['n']} cartoons, "
              f"{sets['photos']['n']} photos (the paper: 1,978 photos, 3,011 cartoons). "
              f"Extractor: {ext['name']}, sha256 {ext['sha256']}, images resized to "
              f"{ext['image_size'][0]}x{ext['image_size'][1]}.",
              "Comparable with the paper only with its test photos and cartoon set, the genuine "
              "2015-12-05 Inception graph, and similar n (FID depends on n)."]
    for warning in report["warnings"]:
        lines.append(f"Warning: {warning}")
    return "\n".join(lines) + "\n"


def plan_photos(photos, out, fmt="same", recursive=False):
    """The photo set of `paper`: the image files under the folder `photos` (its whole tree
    with `recursive`, mirrored under `out`), planned as cartoonize.py plans them with
    --overwrite. A whitebox.batch.Plan whose jobs and failed entries are images only.

    Raises MetricsError when `photos` is not a folder.
    """
    from whitebox.batch import plan_jobs
    from whitebox.metrics import MetricsError
    from whitebox.video import is_video

    if not Path(photos).is_dir():
        raise MetricsError(f"{photos}: no such folder of photos")
    plan = plan_jobs([photos], out, fmt=fmt, recursive=recursive, overwrite=True)
    plan.jobs = [job for job in plan.jobs if not is_video(job.source)]
    plan.failed = [(path, reason) for path, reason in plan.failed if not is_video(path)]
    return plan


def photo_files(plan):
    """Every photo of a `plan_photos` plan, sorted, whether or not it can be cartoonized."""
    return sorted([job.source for job in plan.jobs] + [path for path, _ in plan.failed])


def embed_photos(plan, net, source, quiet=False):
    """FeatureSet of every photo of a `plan_photos` plan; `source` names it in reports."""
    from whitebox.metrics import embed_paths, features_to_set

    features, skipped = embed_paths(photo_files(plan), net, not quiet, label="photos")
    return features_to_set(features, net, source, "folder", skipped)


def _identity(path):
    """(inode, mtime) of a file, or None: an output replaced by this run has a new one."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def cartoonize_and_embed(plan, photos, out, net, weights=None, fmt="same", offline=False,
                         quiet=False, recursive=False):
    """Cartoonize the folder `photos` into `out` through cartoonize.main (the same code as
    cartoonize.py, with --recursive when asked), then embed the outputs with `net`. `plan`
    is plan_photos(photos, out, fmt, recursive), made before anything is written to `out`.

    Only outputs written by this run count: a file left in `out` by an earlier run, whose
    photo failed this time, is not embedded. Returns (FeatureSet of the cartoonized photos,
    counts dict: photos, cartoonized, failed, not_cartoonized: the failed photos' paths).
    Raises MetricsError when cartoonize.py cannot load the weights.
    """
    import cartoonize
    from whitebox.metrics import MetricsError, embed_paths, features_to_set

    before = {job.target: _identity(job.target) for job in plan.jobs}
    argv = ["--input", str(photos), "--output", str(out), "--format", fmt, "--overwrite"]
    argv += ["--recursive"] if recursive else []
    argv += ["--weights", str(weights)] if weights else []
    argv += ["--offline"] if offline else []
    argv += ["--quiet"] if quiet else []
    if cartoonize.main(argv) == 2:
        raise MetricsError("cartoonize.py could not load the weights (see above)")
    done = [job for job in plan.jobs
            if _identity(job.target) not in (None, before[job.target])]
    written = {job.source for job in done}
    features, skipped = embed_paths([job.target for job in done], net, not quiet,
                                    label="cartoonized")
    generated = features_to_set(features, net, out, "folder", skipped)
    everything = photo_files(plan)
    missing = [str(path) for path in everything if path not in written]
    return generated, dict(photos=len(everything), cartoonized=len(done), failed=len(missing),
                           not_cartoonized=missing)


def count_warnings(generated, photos, counts):
    """A line saying how many of the photos given went into each side, unless all did."""
    given = counts["photos"]
    if generated.count == photos.count == given:
        return []
    reasons = []
    if counts["failed"]:
        reasons.append(f"not cartoonized: {counts['failed']}")
    if generated.skipped:
        reasons.append(f"cartoonized images unreadable: {len(generated.skipped)}")
    if photos.skipped:
        reasons.append(f"photos unreadable for the network: {len(photos.skipped)}")
    return [f"of the {given} photos given, {generated.count} went in as cartoonized images "
            f"and {photos.count} as photos ({', '.join(reasons)}; see stderr): FID to photo "
            f"compares sets of different n"
            if generated.count != photos.count else
            f"of the {given} photos given, only {photos.count} went in on each side "
            f"({', '.join(reasons)}; see stderr)"]


def paper_scores(generated, cartoons, photos, counts, kid=False, kid_subsets=100,
                 kid_subset_size=1000, seed=0):
    """FID (and KID) to cartoon and to photo of the cartoonized set; a dict whose warnings
    include any difference between the photos given and those cartoonized (`counts` from
    cartoonize_and_embed)."""
    from whitebox.metrics import compare

    to_cartoon = compare(generated, cartoons, kid, kid_subsets, kid_subset_size, seed)
    to_photo = compare(generated, photos, kid, kid_subsets, kid_subset_size, seed)
    scores = dict(fid_to_cartoon=to_cartoon["fid"], fid_to_photo=to_photo["fid"])
    if kid:
        scores.update(kid_to_cartoon=to_cartoon["kid"], kid_to_photo=to_photo["kid"])
    scores["warnings"] = (count_warnings(generated, photos, counts)
                          + sorted(set(to_cartoon["warnings"] + to_photo["warnings"])))
    return scores


def _check_can_write(path):
    """Refuse, before any long work, a file path that is a folder or lies under a file."""
    from whitebox.metrics import MetricsError

    if path.is_dir():
        raise MetricsError(f"{path}: is a folder, not a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise MetricsError(f"{path}: cannot write ({parent} is not a folder)")


def command_paper(args, extractor):
    from whitebox.metrics import PAPER_VALUES, MetricsError, load_set

    from whitebox.data import atomic_write_text

    if args.markdown:
        _check_can_write(Path(args.markdown))
    net = extractor()  # fail on a bad network file before the long cartoonizing step
    with tempfile.TemporaryDirectory(prefix="whitebox-eval-") as scratch:
        out = Path(args.output) if args.output else Path(scratch)
        plan = plan_photos(args.photos, out, args.format, args.recursive)
        photos = embed_photos(plan, net, args.photos, args.quiet)
        generated, counts = cartoonize_and_embed(plan, args.photos, out, net, args.weights,
                                                 args.format, args.offline, args.quiet,
                                                 args.recursive)
        if not args.output:
            generated.source = "(temporary folder)"
    cartoons = load_set(args.cartoons, extractor, args.recursive, not args.quiet, "cartoons")
    scores = paper_scores(generated, cartoons, photos, counts, args.kid, args.kid_subsets,
                          args.kid_subset_size, args.seed)
    warnings = scores.pop("warnings")
    report = dict(scores)
    report.update(
        paper=dict(PAPER_VALUES, n_photos=1978, n_cartoons=3011),
        cartoonize=dict(weights=str(args.weights) if args.weights else "cartoonize.py default",
                        format=args.format, output=str(args.output) if args.output else None,
                        **counts),
        sets=dict(cartoonized=generated.describe(), cartoons=cartoons.describe(),
                  photos=photos.describe()),
        extractor=net.describe(),
        warnings=warnings)
    table = markdown_table(report)
    report["markdown"] = table
    if args.markdown:
        try:
            atomic_write_text(args.markdown, table)
        except OSError as err:
            raise MetricsError(f"{args.markdown}: cannot write ({err.strerror or err})")
    if not args.quiet:
        print(table, file=sys.stderr)
    return report


def main(argv=None):
    from whitebox.quiet_tf import import_tensorflow

    import_tensorflow()
    args = parse_args(argv)
    from whitebox.metrics import MetricsError

    extractor = Extractor(args.inception, args.batch_size)
    handler = dict(fid=command_fid, stats=command_stats, paper=command_paper)[args.command]
    try:
        report = handler(args, extractor)
    except MetricsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
