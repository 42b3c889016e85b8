"""whitebox.base.cpuinfo: the CPU model and bf16-related flags that every bench/*.py JSON
records."""
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from whitebox.base import cpuinfo

TWO_PROCESSORS = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
model name\t: Something Else
flags\t\t: fpu
"""

AVX2_ONLY = """\
processor\t: 0
model name\t: AMD Ryzen 7 3700X 8-Core Processor
flags\t\t: fpu sse2 avx avx2 fma
"""


def test_model_and_flags_come_from_the_first_processor(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(TWO_PROCESSORS)
    info = cpuinfo.cpu_info(path)
    assert info == dict(model="Intel(R) Xeon(R) Platinum 8480+",
                        flags=dict(avx2=True, avx512f=True, avx512_bf16=True, amx_tile=True,
                                   amx_bf16=True),
                        bf16_native=True)
    assert "amx_int8" in cpuinfo.cpu_flags(path) and "fpu" in cpuinfo.cpu_flags(path)


def test_an_avx2_only_cpu_has_no_native_bf16(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(AVX2_ONLY)
    info = cpuinfo.cpu_info(path)
    assert info["model"] == "AMD Ryzen 7 3700X 8-Core Processor"
    assert info["flags"] == dict(avx2=True, avx512f=False, avx512_bf16=False, amx_tile=False,
                                 amx_bf16=False)
    assert info["bf16_native"] is False


def test_an_unreadable_file_gives_no_model_and_no_flags(tmp_path):
    info = cpuinfo.cpu_info(tmp_path / "missing")
    assert info["model"] is None and not any(info["flags"].values())
    assert info["bf16_native"] is False


def test_this_machine_matches_proc_cpuinfo():
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo on this system")
    first = text.split("\n\n")[0].splitlines()
    model = next((line.split(":", 1)[1].strip() for line in first
                  if line.startswith("model name")), None)
    flags = next(line.split(":", 1)[1].split() for line in first if line.startswith("flags"))
    info = cpuinfo.cpu_info()
    assert info["model"] == model
    assert info["flags"] == {flag: flag in flags for flag in cpuinfo.CPU_REPORT_FLAGS}
    assert info["bf16_native"] == bool({"avx512_bf16", "amx_bf16"} & set(flags))


# Loads a bench script without running it, then says whether its `cpu_info` is the shared one.
LOAD = """\
import os, runpy, sys
sys.path[:0] = [os.path.dirname(sys.argv[1]), "src"]  # as `python bench/x.py` sees them
from whitebox.base import cpuinfo
print(runpy.run_path(sys.argv[1], run_name="bench").get("cpu_info") is cpuinfo.cpu_info)
"""


@pytest.mark.parametrize("script", sorted((REPO / "bench").glob("*.py")),
                         ids=lambda p: p.name)
def test_every_benchmark_takes_the_shared_cpu_info(script):
    result = subprocess.run([sys.executable, "-c", LOAD, str(script)], capture_output=True,
                            text=True, timeout=300, cwd=REPO)
    assert result.stdout.strip().splitlines()[-1:] == ["True"], result.stderr[-2000:]


def test_a_benchmark_json_records_this_cpu():
    """The quickest bench, run on two 32x32 images: its JSON's cpu field is cpu_info()."""
    result = subprocess.run([sys.executable, "bench/superpixel.py", "--batch", "2", "--repeats",
                             "1", "--size", "32", "--n-jobs", "1"], capture_output=True,
                            text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["cpu"] == cpuinfo.cpu_info()
