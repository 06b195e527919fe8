"""CPU-numerics pins: set before the libraries load, recorded, and they make kernel choice
irrelevant (a run capped at AVX2 and a native AVX-512 run give the same bits when pinned)."""

import json
import os
import subprocess
import sys

import pytest

from repro.core import numerics

#: Work that goes through each pinned library: MKL (matmul), ATen loops (softmax, norms,
#: AdamW), oneDNN (a convolution), numpy's OpenBLAS and SIMD loops (as mUSE uses them).
PROBE = r"""
import hashlib, sys
import repro  # first: applies the pins unless the environment already holds them
import numpy as np, torch
torch.manual_seed(0); torch.set_num_threads(2)
h = hashlib.sha256()
net = torch.nn.Sequential(torch.nn.Linear(300, 257), torch.nn.ReLU(), torch.nn.Linear(257, 64))
opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
x = torch.randn(128, 300)
for _ in range(20):
    z = torch.nn.functional.normalize(net(x), dim=-1)
    loss = torch.logsumexp(z @ z.T / 0.05, dim=1).mean()
    opt.zero_grad(); loss.backward(); opt.step()
h.update(z.detach().numpy().tobytes())
conv = torch.nn.Conv2d(3, 16, 3, padding=1)
h.update(conv(torch.randn(4, 3, 56, 56)).detach().numpy().tobytes())
rng = np.random.default_rng(0)
a = rng.standard_normal((200, 300), dtype=np.float32)
h.update(np.tanh(a @ a.T).tobytes()); h.update(np.exp(a).sum(axis=1).tobytes())
print(h.hexdigest(), torch.backends.cpu.get_cpu_capability())
"""

#: What a lesser machine of the same family looks like: every library capped at AVX2.
AVX2_MACHINE = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                "ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell",
                "NPY_DISABLE_CPU_FEATURES": numerics.PINS["NPY_DISABLE_CPU_FEATURES"]}


def _probe(extra: dict, pinned: bool) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in numerics.PINS and k not in AVX2_MACHINE and k != "XLIR_NUMERICS"}
    env["XLIR_NUMERICS"] = "pinned" if pinned else "native"
    env.update(extra)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    digest, capability = out.stdout.split()
    return digest, capability


def test_apply_sets_what_is_missing_and_keeps_user_values():
    env = {"MKL_CBWR": "COMPATIBLE"}
    numerics.apply(env)
    assert env["MKL_CBWR"] == "COMPATIBLE"  # the user's value wins
    assert env["GOMP_SPINCOUNT"] == "1000"
    if numerics.platform.machine().lower() in ("x86_64", "amd64"):
        assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["OPENBLAS_CORETYPE"] == "Haswell"
    native = {"XLIR_NUMERICS": "native"}
    numerics.apply(native)
    assert "ATEN_CPU_CAPABILITY" not in native and native["GOMP_SPINCOUNT"] == "1000"
    with pytest.raises(ValueError, match="XLIR_NUMERICS='fast'"):
        numerics.apply({"XLIR_NUMERICS": "fast"})


@pytest.mark.skipif(numerics.platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="the pins are x86-64 ISA caps")
def test_pins_make_kernel_choice_irrelevant():
    native, cap_native = _probe({}, pinned=False)
    if cap_native not in ("AVX512", "AVX512_BF16") and "512" not in cap_native:
        pytest.skip(f"this CPU runs {cap_native} kernels natively: nothing to cap")
    capped, cap_capped = _probe(AVX2_MACHINE, pinned=False)
    assert cap_capped == "AVX2"
    assert native != capped, "unpinned: AVX-512 and AVX2 kernels should round differently"
    pinned, cap_pinned = _probe({}, pinned=True)
    pinned_capped, _ = _probe({"MKL_ENABLE_INSTRUCTIONS": "AVX2"}, pinned=True)
    assert cap_pinned == "AVX2"
    assert pinned == pinned_capped, "pinned: the kernel choice must not change the bits"


def test_record_names_cpu_capability_libraries_and_pins():
    rec = numerics.record()
    json.dumps(rec)  # goes into metrics.json
    assert rec["mode"] in ("pinned", "native") and rec["torch_threads"] >= 1
    assert rec["torch_cpu_capability"] and rec["cpu_model"] and "torch" in rec
    if rec["mode"] == "pinned" and rec["machine"] in ("x86_64", "AMD64"):
        assert rec["env"]["ATEN_CPU_CAPABILITY"] == "avx2"
        assert rec["torch_cpu_capability"] == "AVX2"
    assert "GOMP_SPINCOUNT" not in rec["env"]  # speed-only settings do not enter metrics.json


#: Records the environment at the moment torch is first imported, then imports a module of
#: repro that starts the CUDA call paths (trainer: seed_everything; backbones: extract).
FIRST_TORCH = r"""
import importlib.abc, os, sys
seen = {}
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch" and "at_torch" not in seen:
            seen["at_torch"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
        return None
sys.meta_path.insert(0, Watch())
assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
import repro.training.trainer, repro.towers.backbones
print(seen["at_torch"])
"""


def test_cuda_determinism_is_in_the_environment_before_torch_loads():
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    out = subprocess.run([sys.executable, "-c", FIRST_TORCH], env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == numerics.CUDA_DETERMINISM["CUBLAS_WORKSPACE_CONFIG"]
    # and a user's own value wins
    env["CUBLAS_WORKSPACE_CONFIG"] = ":16:8"
    code = "import os, repro; print(os.environ['CUBLAS_WORKSPACE_CONFIG'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == ":16:8"


def test_seeding_switches_on_deterministic_algorithms_without_the_compiler():
    """The same switch ``torch.use_deterministic_algorithms(True)`` sets, errors and all, and
    torch's compiler stays unimported (about 2 s of every training process)."""
    code = ("import sys, torch\n"
            "from repro.config import make_config\nfrom repro.training import trainer\n"
            "assert not torch.are_deterministic_algorithms_enabled()\n"
            "trainer.seed_everything(make_config('mini'))\n"
            "print(torch.are_deterministic_algorithms_enabled(),"
            " torch.is_deterministic_algorithms_warn_only_enabled(),"
            " 'torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "False", "False"]
