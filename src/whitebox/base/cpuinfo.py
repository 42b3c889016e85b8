"""The CPU model and the instruction sets that decide bfloat16 support, from /proc/cpuinfo.

No TensorFlow here: `whitebox.model.precision` asks it whether bf16 is native, and every bench/*.py
script records `cpu_info()` in its JSON so that a measured number names the CPU it came from.
"""
import functools

# Either one makes bfloat16 convolutions native on a CPU.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# The flags a benchmark report records: the vector width, and bf16 without and with AMX.
CPU_REPORT_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


@functools.cache
def first_processor(path="/proc/cpuinfo"):
    """{field: value} of the first processor block of a cpuinfo file (empty if unreadable)."""
    fields = {}
    try:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    if fields:
                        break
                    continue
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_flags(path="/proc/cpuinfo"):
    """The feature flags of the first processor (empty set if unknown)."""
    return frozenset(first_processor(str(path)).get("flags", "").split())


def cpu_info(path="/proc/cpuinfo"):
    """What a benchmark report records about the CPU, as a dict:

    model: the "model name" field (None where the file has none);
    flags: {flag: present} for each of CPU_REPORT_FLAGS;
    bf16_native: whether one of CPU_BF16_FLAGS is present, i.e. whether `--precision bf16`
    runs in bfloat16 on this CPU (without it, and without a capable GPU, it uses fp32).
    """
    fields = first_processor(str(path))
    flags = set(fields.get("flags", "").split())
    return dict(model=fields.get("model name"),
                flags={flag: flag in flags for flag in CPU_REPORT_FLAGS},
                bf16_native=bool(flags & set(CPU_BF16_FLAGS)))
