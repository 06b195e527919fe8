"""``python -m repro.bench gpu-check``: what a GPU does to this package, in one command.

Meant for the day a GPU is at hand; at most about 8 minutes on one GPU. Writes one JSON
(default ``gpu_check.json``) with

* the device and library versions;
* two short trainings with the same seed on the GPU: bit-identical or not (max |difference|
  of the trained weights);
* the difference between that short run on the GPU and on the CPU;
* seconds per epoch at paper scale and the projected grid time (:func:`repro.bench.scale.measure`);
* the one-time extraction throughputs (:func:`repro.bench.scale.measure_extraction`) and the
  projected full-grid time including them.

Without a GPU it says so in one line and returns None (exit 0). ``device`` and ``tiny`` let a
test run the same path end to end on the CPU at tiny sizes.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from repro.bench.scale import (IMAGE_DIM, measure, measure_extraction, one_time_costs,
                               paper_tower_dims, project, synthetic_task)
from repro.config import make_config
from repro.core.fileio import atomic_write_bytes
from repro.model.encoder import DualEncoder
from repro.training.trainer import (Hooks, TrainData, make_optimizer, seed_everything,
                                    train_epoch)

#: Sizes of the full check (one GPU) and of the test's tiny one.
FULL = {"short_scale": 0.02, "short_steps": 100, "epoch_steps": 30, "epoch_scale": 1.0,
        "images": 256, "captions": 2048}
TINY = {"short_scale": 0.002, "short_steps": 3, "epoch_steps": 2, "epoch_scale": 0.001,
        "images": 2, "captions": 8}


def versions(device: torch.device) -> dict:
    """Device and library versions."""
    out = {"python": platform.python_version(), "torch": torch.__version__,
           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
           "device": str(device), "cpu": platform.processor() or platform.machine()}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        out.update({"gpu": p.name, "capability": f"{p.major}.{p.minor}",
                    "gpu_memory_GB": p.total_memory / 2**30})
    return out


def short_run(device: str, task, steps: int, seed: int = 0) -> dict:
    """``steps`` paper-profile optimizer steps on ``task`` (a synthetic paper-shaped task,
    the same for every call); returns the trained weights (on the CPU) and the losses."""
    cfg = make_config("paper", [f"device={device}", "threads=2"], seed=seed)
    dev = seed_everything(cfg)
    model = DualEncoder(cfg, task.text_dim, IMAGE_DIM).to(dev)
    opt = make_optimizer(model, cfg)
    means, _ = train_epoch(model, opt, task, cfg, 1, TrainData.of(task, dev),
                           Hooks(stop_after_batches=steps))
    return {"weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "loss": means["loss"]}


def weight_difference(a: dict, b: dict) -> dict:
    """Bit-identity and the largest absolute difference between two runs' weights."""
    diff = max(float((a["weights"][k].double() - b["weights"][k].double()).abs().max())
               for k in a["weights"])
    same = all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])
    return {"bit_identical": same, "max_abs_weight_diff": diff,
            "loss": [a["loss"], b["loss"]]}


def gpu_check(out: Path = Path("gpu_check.json"), device: str | None = None,
              tiny: bool = False, log=print) -> dict | None:
    """Run the check on ``device`` (default: the GPU; none here: one line, None)."""
    if device is None:
        if not torch.cuda.is_available():
            log("gpu-check: no CUDA GPU on this machine (torch.cuda.is_available() is False); "
                "nothing run")
            return None
        device = "cuda"
    sizes = TINY if tiny else FULL
    t_start = time.perf_counter()
    dev = torch.device(device)
    report = {"versions": versions(dev), "sizes": sizes, "tiny": tiny}
    log(f"gpu-check on {dev}: two short identical-seed runs")
    task = synthetic_task(512, sizes["short_scale"], seed=0)
    first = short_run(device, task, sizes["short_steps"])
    second = short_run(device, task, sizes["short_steps"])
    report["same_seed_twice"] = weight_difference(first, second)
    log("gpu-check: the same short run on the CPU")
    cpu = short_run("cpu", task, sizes["short_steps"])
    report["device_vs_cpu"] = weight_difference(first, cpu)
    log("gpu-check: seconds per epoch at paper scale")
    rows = {t: {"tower": t, **measure(d, sizes["epoch_steps"], sizes["epoch_scale"],
                                      sets=[f"device={device}"])}
            for t, d in paper_tower_dims().items()}
    report["paper_scale"] = list(rows.values())
    log("gpu-check: extraction throughputs")
    x = measure_extraction(sizes["images"], sizes["captions"], device=device)
    once = one_time_costs(x)
    report["extraction"] = {**x, **once}
    report["projection"] = project(rows, once)
    report["wall_s"] = time.perf_counter() - t_start
    atomic_write_bytes(Path(out), (json.dumps(report, indent=1) + "\n").encode())
    p = report["projection"]
    log(f"gpu-check: same seed twice bit-identical: {report['same_seed_twice']['bit_identical']}; "
        f"{dev} vs CPU max |weight diff| {report['device_vs_cpu']['max_abs_weight_diff']:.2e}; "
        f"full grid {p['reproduce_grid_min']:.1f} min + one-time {p['one_time_min']:.1f} min; "
        f"{report['wall_s']:.0f} s -> {out}")
    return report
