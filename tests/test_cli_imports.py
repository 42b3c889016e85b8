"""The command lines stay thin and the package's floors hold, checked by running them: `--help`
and usage errors load neither TensorFlow, OpenCV, SciPy, Beam nor Gradio, and no command line
another; a library floor loads no floor above it, nor whitebox.cli."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from whitebox.base.privacy import CACHE_FOLDERS

CLIS = sorted(path.name for path in REPO.glob("*.py"))
SCRIPTS = sorted(f"scripts/{path.name}" for path in (REPO / "scripts").glob("*.py"))
SUBCOMMANDS = {"train.py": ["make-lists", "pretrain", "train", "convert-vgg"],
               "evaluate.py": ["fid", "stats", "paper"]}
HEAVY = ["tensorflow", "cv2", "scipy", "apache_beam", "gradio"]

# Runs a CLI as `python CLI ...` would, then names the modules of a list that it loaded.
WRAPPER = """\
import runpy, sys
forbidden = sys.argv[1].split(",")
sys.argv = sys.argv[2:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    loaded = sorted(set(forbidden) & set(sys.modules))
    if loaded:
        print("LOADED", *loaded, file=sys.stderr)
"""

# Every help screen: each command line alone and with each of its subcommands.
HELP = [(cli, [*sub, "--help"], None) for cli in CLIS + SCRIPTS
        for sub in [[], *([s] for s in SUBCOMMANDS.get(cli, []))]]
# At least one usage error per command line and subcommand, and the line each prints.
USAGE_ERRORS = [
    ("cartoonize.py", ["-i", "x.png", "-o", "out", "--max-short-side", "3"],
     "cartoonize.py: error: --max-short-side 3 would shrink every image"),
    ("cartoonize.py", ["-i", "x.png", "-o", "cartoonize.py"], "is a file, not a folder"),
    ("cartoonize.py", ["-i", "x.png", "-o", ""], "argument --output/-o: an empty path"),
    ("cartoonize.py", ["-i", "", "-o", "out"], "argument --input/-i: an empty path"),
    ("cartoonize.py", ["-i", "x.png", "-o", "out", "--xla", "auto"], "unrecognized arguments"),
    ("cartoonize_beam.py", ["-i", "x/*.png", "-o", ""], "argument --output/-o: an empty path"),
    ("evaluate.py", ["paper", "--photos", "p", "--cartoons", "c", "--inception", "x", "-o", ""],
     "argument --output/-o: an empty path"),
    ("evaluate.py", ["fid", "", "b"], "argument A: an empty path"),
    ("evaluate.py", ["fid", "a", "b", "--inception", ""], "argument --inception: an empty path"),
    ("evaluate.py", ["stats", "", "-o", "x.npz", "--inception", "i"], "argument DIR: an empty"),
    ("export.py", ["onnx", "m.onnx", "--quantize", "fp16"], "--quantize applies to tflite only"),
    ("export.py", ["tflite", "m.tflite", "--max-short-side", "-1"], "must be 0 or positive"),
    ("export.py", ["tflite", "m.tflite", "-w", ""], "argument --weights/-w: an empty path"),
    ("ablate.py", ["fst", "--out", "o", "--iterations", "0", "--photos", "p", "--cartoons", "c",
                   "--inception", "x"], "ablate.py: error: --iterations must be >= 1"),
    ("ablate.py", ["fst", "--out", "", "--iterations", "1", "--photos", "p", "--cartoons", "c",
                   "--inception", "x"], "argument --out: an empty path"),
    ("ablate.py", ["--out", "o"], "the following arguments are required"),
    ("ablate.py", ["fst", "--out", "ablate.py/x", "--iterations", "1", "--photos", "p",
                   "--cartoons", "c", "--inception", "x"],
     "ablate.py: error: --out ablate.py/x: ablate.py is a file, not a folder"),
    ("train.py", ["pretrain", "--out", ""], "argument --out: an empty path"),
    ("train.py", ["train", "--data-lists", ""], "argument --data-lists: an empty path"),
    ("train.py", ["make-lists", "--dataset", "d", "--out", ""], "argument --out: an empty path"),
    ("train.py", ["convert-vgg", "a.npy"], "the following arguments are required: dst"),
    ("app.py", ["--port", "0"], "app.py: error: --port must be between 1 and 65535"),
    ("app.py", ["--weights", ""], "argument --weights/-w: an empty path"),
    ("scripts/before_after.py", ["p.jpg", "c.png", "./p.jpg"], "./p.jpg would overwrite an input"),
    ("scripts/before_after.py", ["p.jpg", "c.png", "x/../c.png"], "the name must end with .jpg"),
    ("scripts/before_after.py", ["p.jpg", "c.jpg", "x/../c.jpg"], "would overwrite an input"),
    ("scripts/sample_clip.py", ["clip.gif"], "clip.gif: the name must end with .mp4"),
    ("scripts/sample_photos.py", ["a", "b"], "unrecognized arguments: b"),
]
RUNS = HELP + USAGE_ERRORS


@pytest.mark.parametrize("cli, args, message", RUNS,
                         ids=[" ".join([c, *a]) for c, a, _ in RUNS])
def test_help_and_usage_errors_load_nothing_heavy_nor_another_cli(cli, args, message):
    others = [Path(name).stem for name in CLIS + SCRIPTS if name != cli]
    others += [f"whitebox.cli.{Path(name).stem}" for name in CLIS if name != cli]
    result = subprocess.run([sys.executable, "-c", WRAPPER, ",".join(HEAVY + others),
                             str(REPO / cli), *args],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert "LOADED" not in result.stderr, result.stderr
    if message is None:
        assert result.returncode == 0 and "usage:" in result.stdout, result.stderr
        if cli in SUBCOMMANDS and args == ["--help"]:  # a new subcommand gets its own runs
            assert "{" + ",".join(SUBCOMMANDS[cli]) + "}" in result.stdout
    else:
        assert result.returncode == 2
        assert message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith(Path(cli).name) and ": error: " in result.stderr


# Runs a script with its work replaced by a Ctrl-C.
INTERRUPTED = """\
import runpy, sys
sys.path.insert(0, "src")
import whitebox.cli, whitebox.base.image_io
def interrupt(*args, **kwargs):
    raise KeyboardInterrupt
whitebox.cli.script_write = whitebox.base.image_io.read_bgr = interrupt
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("script, args", [("scripts/sample_clip.py", []),
                                          ("scripts/sample_photos.py", []),
                                          ("scripts/before_after.py", ["p.jpg", "c.png", "o.jpg"])])
def test_ctrl_c_in_a_script_is_one_line_and_exit_130(script, args, tmp_path):
    result = subprocess.run([sys.executable, "-c", INTERRUPTED, str(REPO / script), *args],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert (result.returncode, result.stderr) == (130, "interrupted\n")


FLOORS = ("base", "model", "train", "infer", "evaluate", "serve", "cli")
# Imports every module of each floor named, in that order; after each floor, names the modules
# of the floors not named so far, and the command lines, that are loaded. An optional package
# missing skips a module.
PROBE = """\
import importlib, pkgutil, sys
sys.path.insert(0, "src")
floors, order, clis = (arg.split(",") for arg in sys.argv[1:])
for i, floor in enumerate(order):
    package = importlib.import_module("whitebox." + floor)
    for info in pkgutil.iter_modules(package.__path__):
        try:
            importlib.import_module(f"whitebox.{floor}.{info.name}")
        except ModuleNotFoundError as err:
            if (err.name or "whitebox").startswith("whitebox"):
                raise
    above = tuple(f"whitebox.{f}" for f in floors if f not in order[:i + 1])
    loaded = sorted(m for m in sys.modules if m.startswith(above) or m in clis)
    if loaded:
        print(floor, "loads", *loaded)
"""


@pytest.mark.parametrize("order", [FLOORS[:-1], ("base", "model", "infer", "train")],
                         ids=["up to serve", "infer before train"])
def test_no_floor_loads_a_higher_one_nor_the_command_lines(order):
    """Lower floors never import higher ones, nor a command line; train and infer know nothing
    of each other."""
    env = {k: v for k, v in os.environ.items() if k not in CACHE_FOLDERS}  # as a fresh shell
    clis = ",".join(Path(name).stem for name in CLIS + SCRIPTS)
    result = subprocess.run([sys.executable, "-c", PROBE, ",".join(FLOORS), ",".join(order), clis],
                            capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "", result.stdout


def test_console_scripts_are_the_command_lines():
    """Each console script of pyproject.toml is one of the command lines, and its main
    answers --help."""
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert sorted(target.split(":")[0] for target in scripts.values()) == \
        sorted(f"whitebox.cli.{Path(name).stem}" for name in CLIS)
    for target in scripts.values():
        module, function = target.split(":")
        result = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, 'src'); "
                                 f"from {module} import {function}; {function}(['--help'])"],
                                capture_output=True, text=True, timeout=120, cwd=REPO)
        assert result.returncode == 0 and "usage:" in result.stdout, result.stderr
