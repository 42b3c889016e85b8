"""The command lines stay thin: `--help` answers without TensorFlow, and no CLI imports another."""
import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO

# Every command line: the Python files at the repository root; and the helper scripts.
CLIS = sorted(path.name for path in REPO.glob("*.py"))
SCRIPTS = sorted(f"scripts/{path.name}" for path in (REPO / "scripts").glob("*.py"))


def _subcommands(cli):
    """The subcommands a CLI declares (`....add_parser("name", ...)`), sorted."""
    tree = ast.parse((REPO / cli).read_text(encoding="utf-8"))
    return sorted(node.args[0].value for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_parser"
                  and node.args and isinstance(node.args[0], ast.Constant))


# Every help screen: each command line alone and with each of its subcommands.
HELP = [(cli, sub) for cli in CLIS + SCRIPTS for sub in [[], *([s] for s in _subcommands(cli))]]

# Runs a CLI's main() as `python CLI ...` would, then fails if TensorFlow was imported.
WRAPPER = """\
import runpy, sys
script = sys.argv[1]
sys.argv = sys.argv[1:]
try:
    runpy.run_path(script, run_name="__main__")
finally:
    if "tensorflow" in sys.modules:
        print("TENSORFLOW IMPORTED", file=sys.stderr)
        sys.exit(3)
"""


@pytest.mark.parametrize("cli, sub", HELP, ids=[" ".join([c, *s]) for c, s in HELP])
def test_help_does_not_import_tensorflow(cli, sub):
    result = subprocess.run([sys.executable, "-c", WRAPPER, str(REPO / cli), *sub, "--help"],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert "TENSORFLOW IMPORTED" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


# A usage error of each kind the parsers check themselves, and the line each prints.
USAGE_ERRORS = [
    ("cartoonize.py", ["-i", "x.png", "-o", "out", "--max-short-side", "3"],
     "would shrink every image"),
    ("cartoonize.py", ["-i", "x.png", "-o", "cartoonize.py"], "is a file, not a folder"),
    ("cartoonize.py", ["-i", "x.png", "-o", ""], "argument --output/-o: an empty path"),
    ("cartoonize.py", ["-i", "", "-o", "out"], "argument --input/-i: an empty path"),
    ("cartoonize_beam.py", ["-i", "x/*.png", "-o", ""], "argument --output/-o: an empty path"),
    ("evaluate.py", ["paper", "--photos", "p", "--cartoons", "c", "--inception", "x", "-o", ""],
     "argument --output/-o: an empty path"),
    ("cartoonize.py", ["-i", "x.png", "-o", "out", "--xla", "auto"], "unrecognized arguments"),
    ("export.py", ["onnx", "m.onnx", "--quantize", "fp16"], "--quantize applies to tflite only"),
    ("export.py", ["tflite", "m.tflite", "--max-short-side", "-1"], "must be 0 or positive"),
    ("ablate.py", ["fst", "--out", "o", "--iterations", "0", "--photos", "p", "--cartoons", "c",
                   "--inception", "x"], "ablate.py: error: --iterations must be >= 1"),
    ("ablate.py", ["fst", "--out", "", "--iterations", "1", "--photos", "p", "--cartoons", "c",
                   "--inception", "x"], "argument --out: an empty path"),
    ("ablate.py", ["--out", "o"], "the following arguments are required"),
    ("ablate.py", ["fst", "--out", "ablate.py/x", "--iterations", "1", "--photos", "p",
                   "--cartoons", "c", "--inception", "x"],
     "ablate.py: error: --out ablate.py/x: ablate.py is a file, not a folder"),
    ("export.py", ["tflite", "m.tflite", "-w", ""], "argument --weights/-w: an empty path"),
    ("evaluate.py", ["fid", "", "b"], "argument A: an empty path"),
    ("evaluate.py", ["stats", "", "-o", "x.npz", "--inception", "i"], "argument DIR: an empty"),
    ("evaluate.py", ["fid", "a", "b", "--inception", ""], "argument --inception: an empty path"),
    ("train.py", ["pretrain", "--out", ""], "argument --out: an empty path"),
    ("train.py", ["train", "--data-lists", ""], "argument --data-lists: an empty path"),
    ("train.py", ["make-lists", "--dataset", "d", "--out", ""], "argument --out: an empty path"),
    ("app.py", ["--port", "0"], "app.py: error: --port must be between 1 and 65535"),
    ("app.py", ["--weights", ""], "argument --weights/-w: an empty path"),
    ("scripts/before_after.py", ["p.jpg", "c.png", "./p.jpg"], "./p.jpg would overwrite an input"),
    ("scripts/before_after.py", ["p.jpg", "c.png", "x/../c.png"], "the name must end with .jpg"),
    ("scripts/before_after.py", ["p.jpg", "c.jpg", "x/../c.jpg"], "would overwrite an input"),
]


@pytest.mark.parametrize("cli, args, message", USAGE_ERRORS,
                         ids=[" ".join([c, *a]) for c, a, _ in USAGE_ERRORS])
def test_usage_errors_do_not_import_tensorflow(cli, args, message):
    result = subprocess.run([sys.executable, "-c", WRAPPER, str(REPO / cli), *args],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert "TENSORFLOW IMPORTED" not in result.stderr
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr


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


def _imported_modules(path):
    """Top-level names of every module `path` imports, wherever the import statement is."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("cli", CLIS)
def test_no_command_line_imports_another(cli):
    others = {name[:-len(".py")] for name in CLIS if name != cli}
    assert _imported_modules(REPO / cli) & others == set()


def test_the_import_check_sees_imports_inside_functions(tmp_path):
    script = tmp_path / "x.py"
    script.write_text("def main():\n    from cartoonize import main\n    import evaluate.sub\n")
    assert {"cartoonize", "evaluate"} <= _imported_modules(script)
