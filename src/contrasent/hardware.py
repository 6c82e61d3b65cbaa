"""What the CPU can do natively, and a warning when bfloat16 is asked for on a CPU that only emulates it.

bfloat16 speeds up matrix products only where the hardware multiplies in bf16: x86 CPUs with
``avx512_bf16`` or AMX (``amx_bf16``), Arm CPUs with the ``bf16`` extension, and GPUs. Elsewhere PyTorch
converts to float32 and back around every product, and bf16 runs *slower* than float32 (0.23× of
sentence-transformers' float32 encoding was measured on an AVX2-only AMD EPYC). Users who ask for bf16
expect speed, so they are told once per process.
"""

from __future__ import annotations

import functools
import platform
import warnings
from pathlib import Path

_X86_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags_have_native_bfloat16(cpuinfo: str, machine: str) -> bool | None:
    """Whether ``/proc/cpuinfo`` text shows bf16 arithmetic: None when it lists no flags for ``machine``."""
    key = "flags" if machine in ("x86_64", "amd64", "i686") else "features"
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == key:
            flags = set(value.split())
            return bool(flags & _X86_BF16_FLAGS) if key == "flags" else "bf16" in flags
    return None


@functools.cache
def cpu_has_native_bfloat16() -> bool | None:
    """True / False on Linux (read from ``/proc/cpuinfo``); None where that cannot be told."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return cpu_flags_have_native_bfloat16(cpuinfo, platform.machine().lower())


_warned: set[str] = set()


def warn_if_bfloat16_is_emulated(where: str) -> None:
    """Warn once per ``where`` (e.g. ``"encode(dtype='bfloat16')"``) that this CPU has no bf16 units.

    Call only when bf16 is about to run on the CPU; GPUs are not concerned.
    """
    if where in _warned or cpu_has_native_bfloat16() is not False:
        return
    _warned.add(where)
    warnings.warn(
        f"{where} runs on a CPU without native bfloat16 (no avx512_bf16 / amx_bf16): PyTorch emulates bf16 "
        "here, which is slower than float32; use float32 on this machine for speed",
        RuntimeWarning, stacklevel=3,
    )
