"""Widget models and state bytes a Voila page of notebook 1 loads, by model class.

A page's front end asks the kernel for every widget model it holds (`request_states`), so the
count and the size of their states are what one visitor costs at load. This builds the views
notebook 1 builds (its six SurfaceExplorers with the same presets and steps, OPTIVIZ_FAST sizes)
in this process and counts `ipywidgets.Widget.widgets`: models per class, state JSON bytes
(`get_state()` without its binary buffers), buffer bytes and the time
`Widget.get_manager_state()` takes over them (best of 5); and which models no view's widget
tree reaches (candidates for a leak; the frame window's two linked IntTexts are expected there).

For a figure in the same process, the views are built twice: with each widget's own Layout and
Style (`Looks` made never to share, as every view was before it shared them), then as shipped.

Usage: python benchmarks/bench_widget_models.py [--dashboard]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# notebook 1's cells that display a view (the `FAST` step counts: what the test suite executes)
NOTEBOOK_1 = [
    ("narrow_valley", 300), ("nesterov_overshoot", 200), ("lr_too_large", 150),
    ("adagrad_dies", 600), ("adam_rosenbrock", 300),
]


def registry() -> dict[str, Any]:
    import ipywidgets as widgets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Widget.widgets: still the registry in ipywidgets 8
        return dict(widgets.Widget.widgets)


def notebook_1_views() -> list[Any]:
    import optiviz as ov
    views = []
    for preset, steps in NOTEBOOK_1:
        v = ov.SurfaceExplorer(preset=preset)
        v.step(steps)
        views.append(v)
    noisy = ov.SurfaceExplorer("quadratic", ["sgd", "momentum"], grad_noise=1.0)
    noisy.fair.tune_each(steps=300, seeds=4)
    noisy.fair.seeds(seeds=8, steps=300)
    views.append(noisy)
    return views


def census(models: dict[str, Any], views: list[Any]) -> dict[str, Any]:
    """Models per class, state JSON and buffer bytes, and the models no view's tree reaches."""
    from ipywidgets.widgets.widget import _remove_buffers

    from optiviz.views.common.widget_tree import owned_widgets
    reached = {w.model_id for v in views for w in owned_widgets(v)}
    json_bytes = buffer_bytes = 0
    for w in models.values():
        state, _paths, buffers = _remove_buffers(w.get_state())
        json_bytes += len(json.dumps(state, separators=(",", ":")))
        buffer_bytes += sum(memoryview(b).nbytes for b in buffers)
    return {
        "models": len(models),
        "by_class": collections.Counter(type(w).__name__ for w in models.values()),
        "json_bytes": json_bytes,
        "buffer_bytes": buffer_bytes,
        "unreached": collections.Counter(type(w).__name__ for k, w in models.items() if k not in reached),
    }


def measure(build: Any) -> dict[str, Any]:
    """Census of the models `build()` opened; its views are closed afterwards."""
    import ipywidgets as widgets
    before = set(registry())
    views = build()
    census_ = census({k: w for k, w in registry().items() if k not in before}, views)
    times = []
    for _ in range(5):  # what a page's `request_states` makes the kernel build (twice, in ipywidgets 8)
        t0 = time.perf_counter()
        widgets.Widget.get_manager_state()
        times.append(time.perf_counter() - t0)
    census_["state_s"] = min(times)
    for v in views:
        v.close()
    return census_


def one_explorer() -> list[Any]:
    import optiviz as ov
    preset, steps = NOTEBOOK_1[0]
    v = ov.SurfaceExplorer(preset=preset)
    v.step(steps)
    return [v]


def line(label: str, c: dict[str, Any]) -> str:
    top = ", ".join(f"{n} {k}" for k, n in c["by_class"].most_common(6))
    return (f"{label:38s} {c['models']:5d} models  {c['json_bytes'] / 1e3:7.1f} kB json  "
            f"{c['buffer_bytes'] / 1e3:7.1f} kB buffers  get_manager_state {c['state_s'] * 1e3:5.1f} ms  ({top})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dashboard", action="store_true", help="also count one TrainingDashboard")
    args = parser.parse_args()
    os.environ.setdefault("OPTIVIZ_FAST", "1")
    from optiviz.views.common import controls

    shared = controls.Looks._shared
    controls.Looks._shared = lambda self, kind, traits: kind(**traits)  # every widget its own look
    own_first, own_total = measure(one_explorer), measure(notebook_1_views)
    controls.Looks._shared = shared
    first, total = measure(one_explorer), measure(notebook_1_views)

    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(line("one SurfaceExplorer, own looks", own_first))
    print(line("one SurfaceExplorer, shared looks", first))
    print(line("notebook 1 page, own looks", own_total))
    print(line("notebook 1 page, shared looks", total))
    print(f"ratio (shared / own): models {total['models'] / own_total['models']:.2f}, "
          f"json {total['json_bytes'] / own_total['json_bytes']:.2f}, "
          f"get_manager_state time {total['state_s'] / own_total['state_s']:.2f}")
    print("Layout models per page:", own_total["by_class"]["Layout"], "->", total["by_class"]["Layout"])
    print("reached by no view's tree:", dict(total["unreached"]) or "none")
    if args.dashboard:
        import optiviz as ov
        d_first = measure(lambda: [ov.TrainingDashboard()])
        print(line("one TrainingDashboard", d_first))


if __name__ == "__main__":
    main()
