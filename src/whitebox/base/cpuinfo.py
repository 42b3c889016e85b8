"""The CPU model and the instruction sets that decide bfloat16 support, from /proc/cpuinfo,
without TensorFlow: for `whitebox.model.precision`, and for every bench/*.py JSON, so that a
measured number names its CPU."""
import functools

# Either one makes bfloat16 convolutions native.
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
    """{model: "model name" or None, flags: {flag: present} of CPU_REPORT_FLAGS, bf16_native:
    whether `--precision bf16` runs in bfloat16 on this CPU (else fp32, without a GPU)}."""
    fields = first_processor(str(path))
    flags = cpu_flags(path)
    return dict(model=fields.get("model name"),
                flags={flag: flag in flags for flag in CPU_REPORT_FLAGS},
                bf16_native=bool(flags & set(CPU_BF16_FLAGS)))
