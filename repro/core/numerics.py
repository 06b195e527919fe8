"""CPU numerics: pins that make machines of one architecture compute the same bits, and a
record of what was in force.

The libraries under torch and numpy pick their kernels by the CPU they find: torch's ATen
(AVX2 or AVX-512 loops), MKL (BLAS), oneDNN (convolutions), OpenBLAS (numpy's BLAS, used by the
mUSE text tower) and numpy's own SIMD loops. Two x86-64 machines with different instruction
sets then round differently, and a training run near a plateau turns a last-bit difference
into a different result. :data:`PINS` caps every one of them at AVX2, which all current x86-64
servers have. They are environment variables read when each library loads, so
:func:`apply` must run before numpy and torch are imported: ``import repro`` does it, the
nox sessions set them in the environment, ``XLIR_NUMERICS=native`` turns them off, and a value
the user sets wins.

This module imports neither numpy nor torch at load time.
"""

from __future__ import annotations

import os
import platform
import sys

#: Kernel-choice pins (read at library load). Values for x86-64; ignored on other CPUs.
PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",      # torch's vectorised CPU loops
    "MKL_CBWR": "AVX2",                 # MKL conditional numerical reproducibility
    "ONEDNN_MAX_CPU_ISA": "AVX2",       # oneDNN (convolutions of the image backbone)
    "OPENBLAS_CORETYPE": "Haswell",     # numpy's OpenBLAS (mUSE's matrix products)
    # numpy's own SIMD dispatch (exp, tanh, sums in mUSE): no AVX-512 paths
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX "
                                "AVX512_CNL AVX512_ICL AVX512_SPR",
}

#: GPU determinism that must be in the environment before cuBLAS initialises (at the first
#: CUDA call, which may come from any module): set at ``import repro`` like the pins.
CUDA_DETERMINISM = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}

#: Speed only, never bits: idle OpenMP threads spin briefly, then sleep. The default long
#: spin makes a step ~2-4x slower when another process is busy on 2 cores;
#: OMP_WAIT_POLICY=PASSIVE avoids that but costs ~30% on an idle machine.
SPEED = {"GOMP_SPINCOUNT": "1000"}

#: The CPU flags that decide kernel choice, recorded with every result.
FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                     "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


def mode(environ=os.environ) -> str:
    """``pinned`` (default) or ``native`` (``XLIR_NUMERICS=native``: the libraries choose)."""
    value = environ.get("XLIR_NUMERICS", "pinned")
    if value not in ("pinned", "native"):
        raise ValueError(f"XLIR_NUMERICS={value!r}: expected pinned or native")
    return value


def wanted(environ=os.environ) -> dict:
    """The variables :func:`apply` sets in this mode on this machine."""
    out = dict(SPEED, **CUDA_DETERMINISM)
    if mode(environ) == "pinned" and platform.machine().lower() in ("x86_64", "amd64"):
        out.update(PINS)
    return out


def apply(environ=os.environ) -> list[str]:
    """Set the pins that are not set yet; returns the names of those that came too late
    (numpy or torch already loaded, so the library may not see them)."""
    late = []
    loaded = [m for m in ("numpy", "torch") if m in sys.modules]
    for key, value in wanted(environ).items():
        if key not in environ:
            environ[key] = value
            if loaded and key in PINS:
                late.append(key)
    return late


def env_for_subprocess(environ=os.environ) -> dict:
    """The pins as an environment mapping (for nox sessions and child processes)."""
    return {k: environ.get(k, v) for k, v in wanted(environ).items()}


def cache_key() -> str:
    """What of the numerics a cached feature depends on: mode and torch's kernel level."""
    import torch

    return f"{mode()}-{torch.backends.cpu.get_cpu_capability()}"


def _cpu_model_and_flags() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", platform.machine()):
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, [f for f in FLAGS_OF_INTEREST if f in flags]


def _torch_libraries() -> dict:
    """BLAS, oneDNN and OpenMP versions as torch reports them."""
    import torch

    info = {}
    for line in torch.__config__.show().splitlines():
        line = line.strip(" -")
        if line.startswith("Intel(R) oneAPI Math Kernel Library") or line.startswith("Intel(R) Math"):
            info["mkl"] = line
        elif line.startswith("Intel(R) MKL-DNN") or line.startswith("oneDNN"):
            info["onednn"] = line
        elif line.startswith("OpenMP"):
            info["openmp"] = line
        elif line.startswith("BLAS_INFO"):
            info["blas"] = line.split("=", 1)[-1]
    return info


def record() -> dict:
    """What decides the bits of this process: CPU, kernel capability, library versions, pins
    and torch's thread count (nothing that depends on the machine's core count alone). Goes into ``manifest.json`` and every ``metrics.json``."""
    import numpy as np
    import torch

    model, flags = _cpu_model_and_flags()
    # Only what can change bits: the spin settings (SPEED) change timing alone.
    keys = list(PINS)
    out = {
        "mode": mode(),
        "cpu_model": model,
        "cpu_flags": flags,
        "machine": platform.machine(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "env": {k: os.environ.get(k) for k in keys if os.environ.get(k) is not None},
        "numpy": np.__version__,
        "torch": torch.__version__,
        **_torch_libraries(),
    }
    try:
        cfg = np.show_config(mode="dicts")  # numpy >= 1.26
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        out["numpy_blas"] = f"{blas.get('name', '?')} {blas.get('version', '?')}"
        simd = cfg.get("SIMD Extensions", {})
        out["numpy_simd_found"] = simd.get("found", [])
    except Exception:  # older numpy: no dict form; the versions above still say enough
        pass
    return out
