"""The ablation runner (its files and resuming: docs/EVALUATION.md): each variant, TrainConfig
overrides of a shared base, trains in `<out>/<variant>/`, is scored from its `eval/`, and leaves
RESULT_FILE there: a variant whose result is done (or failed, unless retry_failed) for the same
overrides and iterations is kept; one cut off in evaluation is evaluated again.
"""
import contextlib
import json
import re
import time
import traceback
from pathlib import Path

import cv2
import numpy as np
import tomllib

from whitebox.base import notice
from whitebox.base.errors import UsageError, one_line
from whitebox.base.files import write_text_atomic
from whitebox.base.image_io import ImageError, read_bgr, write_atomic
from whitebox.train.config import TERMS, TrainConfig

RESULT_FILE = "ablation_result.json"
EVAL_FOLDER = "eval"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*$")
RESERVED = ("out_dir", "resume", "command")  # the runner's fields

BUILTIN_MATRICES = {
    # The F_st switch and the paper-versus-code settings (REFERENCE.md section 9).
    "fst": {
        "code": {},
        "no-fst": {"fst_in_losses": False},
        "paper-weights": {"loss_weights": "paper"},
        "paper": {"fst_in_losses": False, "loss_weights": "paper", "superpixel": "selective"},
    },
    # The code's defaults, then the same without each loss term in turn.
    "terms": {"code": {}, **{f"no-{term}": {"disabled": [term]} for term in TERMS}},
}

COLUMNS = [("fid_to_cartoon", "FID to cartoon"), ("fid_to_photo", "FID to photo"),
           ("kid_to_cartoon", "KID to cartoon ×10³"), ("kid_to_photo", "KID to photo ×10³")]


class AblationError(UsageError):
    """A matrix that cannot be used; the message says why."""


def _check_variants(variants, source):
    if not isinstance(variants, dict) or not variants:
        raise AblationError(f"{source}: expected a table of variants, name -> overrides")
    for name, overrides in variants.items():
        if not NAME_PATTERN.match(str(name)):
            raise AblationError(f"{source}: variant name {name!r} is not a plain folder name")
        if not isinstance(overrides, dict):
            raise AblationError(f"{source}: variant {name!r} must map to a table of overrides")
        reserved = sorted(set(overrides) & set(RESERVED))
        if reserved:
            raise AblationError(f"{source}: variant {name!r} may not set {', '.join(reserved)}")
    return {str(k): dict(v) for k, v in variants.items()}


def load_matrix(spec):
    """(matrix name, {variant: overrides}) from a built-in name or a .json/.toml file holding
    the table of variants at the top or under "variants" (TOML `[variants.lr-high]`)."""
    if spec in BUILTIN_MATRICES:
        return spec, json.loads(json.dumps(BUILTIN_MATRICES[spec]))
    path = Path(spec)
    if not path.is_file():
        raise AblationError(f"{spec}: neither a built-in matrix ({', '.join(BUILTIN_MATRICES)}) "
                            f"nor a matrix file")
    parse = tomllib.loads if path.suffix.lower() == ".toml" else json.loads
    try:
        data = parse(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:
        raise AblationError(f"{path}: cannot read the matrix ({err})")
    if isinstance(data, dict) and isinstance(data.get("variants"), dict):
        data = data["variants"]
    return path.stem, _check_variants(data, path)


def variant_config(base, overrides, run_dir):
    """The checked TrainConfig of one variant: base values, then overrides, in run_dir."""
    config = TrainConfig.from_dict({**base, **overrides, "out_dir": str(run_dir)})
    config.validate()
    return config


def variant_configs(variants, base, out_dir):
    """{name: variant_config in out_dir/name}; ConfigError names the first that cannot run."""
    return {name: variant_config(base, overrides, Path(out_dir) / name)
            for name, overrides in variants.items()}


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _cell(row, key):
    value = row.get(key)
    if value is None:
        return "–"
    if isinstance(value, dict):
        return f"{value['mean'] * 1e3:.2f} ± {value['std'] * 1e3:.2f}"
    return f"{value:.2f}"


def markdown(rows, matrix, extractor=None):
    """The ablation table (one row per variant) plus the extractor line."""
    lines = [f"# Ablation `{matrix}`", "",
             "| variant | overrides | iterations | status | "
             + " | ".join(label for _, label in COLUMNS) + " | seconds |",
             "|---|---|---:|---|" + "---:|" * len(COLUMNS) + "---:|"]
    for row in rows:
        overrides = json.dumps(row["overrides"], sort_keys=True) if row["overrides"] else "–"
        status = row["status"]
        if status == "failed" and row.get("error"):
            status = f"failed: {row['error'][:80]}".replace("|", "/")
        seconds = f"{row['seconds']:.0f}" if row.get("seconds") is not None else "–"
        lines.append(f"| {row['name']} | `{overrides}` | {row['iterations']} | {status} | "
                     + " | ".join(_cell(row, key) for key, _ in COLUMNS) + f" | {seconds} |")
    if extractor:
        lines += ["", f"Extractor: {extractor['name']}, sha256 {extractor['sha256']}, images "
                      f"resized to {extractor['image_size'][0]}x{extractor['image_size'][1]}."]
    return "\n".join(lines) + "\n"


def _letterbox(image, size):
    """Fit `image` inside size x size on white, keeping its aspect ratio."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    resized = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=cv2.INTER_AREA)
    cell = np.full((size, size, 3), 255, np.uint8)
    y, x = (size - resized.shape[0]) // 2, (size - resized.shape[1]) // 2
    cell[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return cell


def _label(text, width, height=28):
    strip = np.full((height, width, 3), 255, np.uint8)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    while scale > 0.25 and cv2.getTextSize(text, font, scale, 1)[0][0] > width - 6:
        scale -= 0.05
    cv2.putText(strip, text, (3, height - 9), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def contact_sheet(photo_paths, columns, cell=192):
    """BGR uint8 grid, one row per photo: the photo, then each column's image of it; columns:
    [(label, [path or None per photo])], None or unreadable shown grey, 'missing'."""
    def load(path):
        try:
            return _letterbox(read_bgr(path), cell) if path is not None else None
        except ImageError:
            return None

    missing = np.full((cell, cell, 3), 200, np.uint8)
    cv2.putText(missing, "missing", (cell // 2 - 32, cell // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (80, 80, 80), 1, cv2.LINE_AA)
    header = [_label("photo", cell)] + [_label(label, cell) for label, _ in columns]
    rows = [np.concatenate(header, axis=1)]
    for i, photo in enumerate(photo_paths):
        cells = [load(photo)] + [load(paths[i]) for _, paths in columns]
        rows.append(np.concatenate([c if c is not None else missing for c in cells], axis=1))
    return np.concatenate(rows, axis=0)


def run_ablation(variants, base, out_dir, evaluate, grid_photos=(), grid_outputs=None,
                 matrix="custom", train=None, retry_failed=False, extractor=None,
                 progress=True, say=notice):
    """The rows (dicts) of `variants` ({name: overrides of the TrainConfig values `base`}), in
    order, each trained and scored by evaluate(checkpoint_dir, eval_dir) -> {fid_to_cartoon,
    fid_to_photo, ...}; grid_outputs(eval_dir) -> the cartoon path of each of grid_photos."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if train is None:
        from whitebox.train import training

        def train(config):
            return training.run(config, progress=progress)

    iterations = int(base.get("iterations", TrainConfig().iterations))
    configs = variant_configs(variants, base, out_dir)  # bad overrides fail before training
    rows = {}

    def pending(name):
        return dict(name=name, overrides=variants[name], iterations=iterations,
                    status="pending", run_dir=str(out_dir / name))

    def publish():
        ordered = [rows.get(name) or pending(name) for name in variants]
        report = dict(matrix=matrix, base=base, extractor=extractor, variants=ordered)
        write_text_atomic(out_dir / "ablation.json", json.dumps(report, indent=2) + "\n")
        write_text_atomic(out_dir / "ablation.md", markdown(ordered, matrix, extractor))
        return ordered

    for name, overrides in variants.items():
        saved = _read_json(out_dir / name / RESULT_FILE)
        if saved and (saved.get("overrides"), saved.get("iterations")) == (overrides, iterations) \
                and saved.get("status") in (("done",) if retry_failed else ("done", "failed")):
            say(f"[{name}] kept ({saved['status']}, from an earlier run)")
            rows[name] = saved
        else:
            rows[name] = _run_variant(pending(name), configs[name], train, evaluate, say)
        publish()

    ordered = publish()
    if grid_photos and grid_outputs is not None:
        columns = [(row["name"], grid_outputs(Path(row["run_dir"]) / EVAL_FOLDER)
                    if row["status"] == "done" else [None] * len(grid_photos))
                   for row in ordered]
        write_atomic(out_dir / "ablation.png", contact_sheet(list(grid_photos), columns))
    return ordered


def _run_variant(row, config, train, evaluate, say):
    """`row` once its variant is trained (resumed if it has a checkpoint) and scored, or has
    failed; written to RESULT_FILE."""
    from whitebox.model.checkpoints import CheckpointError, resolve_prefix

    run_dir, name = Path(row["run_dir"]), row["name"]
    with contextlib.suppress(CheckpointError):
        resolve_prefix(run_dir / "checkpoints")
        config.resume = True
    say(f"[{name}] {'resuming' if config.resume else 'training'}: "
        f"{json.dumps(row['overrides'], sort_keys=True)}")
    start = time.perf_counter()
    try:
        train(config)
        row.update(evaluate(run_dir / "checkpoints", run_dir / EVAL_FOLDER), status="done")
    except Exception as err:  # a failed variant must not stop the others
        row.update(status="failed", error=f"{err.__class__.__name__}: {one_line(err)}")
        write_text_atomic(run_dir / "error.txt", traceback.format_exc())
        say(f"[{name}] failed: {row['error']}")
    row["seconds"] = round(time.perf_counter() - start, 1)
    write_text_atomic(run_dir / RESULT_FILE, json.dumps(row, indent=2) + "\n")
    return row
