"""`optiviz present`'s server: Voila on one notebook, sized for a class of visitors.

Run as `python -m optiviz.serve.voila NOTEBOOK --port P [--preheat K] [--max-visitors N]
[--cull-idle S] [--no-browser] [VOILA OPTIONS]` (the CLI starts it as a child; NOTEBOOK may be a
folder, as for the browser tests). What it adds to plain Voila 0.5:

- **Preheated kernels** (Voila's own pool): K kernels import torch and run the notebook before
  anyone asks, at most as many at a time as there are CPU cores, so the first of them is ready soon
  and the first K visitors get a rendered page at once. Visitors' kernels and warm ones together are
  kept at K: a visitor who leaves is replaced by a warm kernel, and the K+1st visitor's kernel starts
  when they arrive (so a class of K costs K kernels, not 2K). These are the only kernels started
  before a visitor: `/optiviz/ready`, the readiness check, renders nothing.
- **A visitor cap from memory** (optiviz.serve.capacity): at the cap a visitor gets a short page
  saying the class is full (HTTP 503, retried every 30 s) instead of a kernel that would push the
  machine out of memory.
- **Kernels go when their page goes**: Voila's page shuts its kernel down on unload with the
  `_xsrf` cookie's value, which Voila never sets (voila-dashboards/voila#1458), so every closed or
  reloaded tab used to keep its kernel. The page handler sets the cookie. Kernels whose page
  vanished without a word (a laptop lid) are culled after `--cull-idle` seconds idle and unconnected.
- **No outside requests**: the `optiviz` template is Voila's lab template without its CDN links.
"""
from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import sys
from pathlib import Path

from .capacity import CULL_IDLE_S, ClassSize, class_size

TEMPLATES = Path(__file__).resolve().parent / "share"  # holds voila/templates/optiviz
READY_PATH = "/optiviz/ready"
RETRY_S = 30
# The page request being served, seen by the kernel manager's methods it awaits (same task context):
# {"kernel": None} until its kernel is known. Places are counted from request to kernel, so a room
# that opens the link at once cannot pass the cap between the check and the kernel's start.
VISIT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("optiviz_visit", default=None)


def voila_command(notebook: Path, port: int, open_browser: bool, size: ClassSize,
                  cull_idle_s: int = CULL_IDLE_S) -> list[str]:
    """The child process `optiviz present` runs."""
    cmd = [sys.executable, "-m", "optiviz.serve.voila", str(notebook), f"--port={port}",
           f"--preheat={size.preheat}", f"--max-visitors={size.max_visitors}", f"--cull-idle={cull_idle_s}"]
    if not open_browser:
        cmd.append("--no-browser")
    return cmd


def voila_argv(notebook: Path, port: int, open_browser: bool, cull_idle_s: int) -> list[str]:
    """Voila's own options: loopback, light theme, no code, the template, culling."""
    argv = [str(notebook), f"--port={port}", "--Voila.ip=127.0.0.1", "--theme=light", "--strip_sources=True",
            "--Voila.port_retries=0", "--template=optiviz", "--preheat_kernel=True",
            # Notebook 7's lab extension (where the notebook package is installed) fails to load in a
            # Voila page ("The getter for the shared module is not a function"); it adds nothing there.
            '--VoilaConfiguration.extension_denylist=["@jupyter-notebook/lab-extension"]',
            f"--MappingKernelManager.cull_idle_timeout={cull_idle_s}",
            f"--MappingKernelManager.cull_interval={max(10, min(60, cull_idle_s // 4))}"]
    if not open_browser:
        argv.append("--no-browser")
    return argv


def class_full_page(max_visitors: int, cull_idle_s: int) -> str:
    """What a visitor past the cap sees; it reloads itself until a place frees."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{RETRY_S}">
<title>The class is full</title>
<style>body {{ font: 20px/1.5 sans-serif; max-width: 40em; margin: 15vh auto; padding: 0 1em; color: #222 }}</style>
</head><body>
<h1>The class is full</h1>
<p>All {max_visitors} places on this server are taken: each visitor gets a live kernel of their own,
and the server runs {max_visitors} at most.</p>
<p>This page tries again every {RETRY_S} seconds. A place frees when someone closes their tab, or
after {cull_idle_s // 60} minutes without use.</p>
</body></html>
"""


# --------------------------------------------------------------------------- Voila, extended


def classroom_kernel_manager(base: type, preheat: int, max_visitors: int, warm_at_once: int) -> type:
    """Voila's preheating kernel manager that counts visitors: warm kernels + visitors' = K while
    visitors are fewer than K, and no warm kernel once the cap is reached."""

    class ClassroomKernelManager(base):  # type: ignore[misc, valid-type]
        def __init__(self, **kwargs):
            self.visitor_ids: set[str] = set()
            self.arriving = 0  # page requests whose kernel is not known yet
            self._warming: asyncio.Semaphore | None = None
            super().__init__(**kwargs)

        @property
        def visitors(self) -> int:
            """Places taken: visitors' kernels still running, and visitors on their way to one."""
            return len(self.visitor_ids & set(self.list_kernel_ids())) + self.arriving

        @property
        def warm(self) -> int:
            """Pooled kernels whose notebook has finished rendering."""
            return sum(1 for pool in self._pools.values() for task in pool
                       if task.done() and not task.cancelled() and task.exception() is None)

        def arrive(self) -> dict:
            visit = {"kernel": None}
            VISIT.set(visit)
            self.arriving += 1
            return visit

        def leave_if_kernelless(self, visit: dict) -> None:
            if visit["kernel"] is None:
                self.arriving -= 1

        def _register(self, kernel_id: str) -> None:
            visit = VISIT.get()
            if visit is not None and visit["kernel"] is None:
                visit["kernel"] = kernel_id
                self.arriving -= 1
            self.visitor_ids.add(kernel_id)

        def fill_if_needed(self, delay=None, notebook_name=None, extra_kernel_env_variables={}, **kwargs):  # noqa: B006 - Voila's signature
            room = max(0, min(preheat, max_visitors) - self.visitors)  # visitors' kernels + warm ones = K
            self.kernel_pools_config = {"default": {"pool_size": room, "kernel_env_variables": {}}}
            return super().fill_if_needed(delay, notebook_name, extra_kernel_env_variables, **kwargs)

        async def _initialize(self, notebook_path, kernel_id=None, **kwargs):
            """Warm at most `warm_at_once` kernels together: on 2 cores, 20 kernels importing torch at
            once all finish late; two at a time, the first is ready in seconds."""
            if self._warming is None:
                self._warming = asyncio.Semaphore(warm_at_once)
            async with self._warming:
                content = await super()._initialize(notebook_path, kernel_id, **kwargs)
                try:
                    await asyncio.shield(content["task"])
                except Exception:  # noqa: BLE001 - the visitor's page shows the notebook's error
                    pass
            return content

        async def get_rendered_notebook(self, notebook_name, extra_kernel_env_variables={}, **kwargs):  # noqa: B006
            task, cache, kernel_id = await super().get_rendered_notebook(notebook_name, extra_kernel_env_variables,
                                                                         **kwargs)
            self._register(kernel_id)
            return task, cache, kernel_id

        async def start_kernel(self, *args, **kwargs):
            """A kernel started by the page handler (the pool was empty): a visitor's. (The pool
            starts its kernels through Voila's manager, below this class.)"""
            kernel_id = await super().start_kernel(*args, **kwargs)
            self._register(kernel_id)
            return kernel_id

        async def shutdown_kernel(self, kernel_id, *args, **kwargs):
            was_visitor = kernel_id in self.visitor_ids
            self.visitor_ids.discard(kernel_id)
            result = await super().shutdown_kernel(kernel_id, *args, **kwargs)
            if was_visitor and self.notebook_path is not None:
                self.fill_if_needed(notebook_name=self.notebook_path)  # a place freed: refill the pool
            return result

    return ClassroomKernelManager


def run(argv: list[str] | None = None) -> int:
    """Parse our options, then start Voila with the classroom handler and kernel manager."""
    parser = argparse.ArgumentParser(prog="python -m optiviz.serve.voila")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--preheat", type=int, default=1)
    parser.add_argument("--max-visitors", type=int, required=True)
    parser.add_argument("--cull-idle", type=int, default=CULL_IDLE_S)
    parser.add_argument("--no-browser", action="store_true")
    args, voila_extra = parser.parse_known_args(argv)  # the rest goes to Voila (e.g. --show_tracebacks=True)

    import tornado.web
    import voila.app
    from voila.tornado.handler import TornadoVoilaHandler

    os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(TEMPLATES), os.environ.get("JUPYTER_PATH")) if p)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    factory = voila.app.voila_kernel_manager_factory

    def kernel_manager_factory(base, preheat_kernel, default_pool_size, page_config_hook=None):
        made = factory(base, preheat_kernel, default_pool_size, page_config_hook=page_config_hook)
        return classroom_kernel_manager(made, args.preheat, args.max_visitors, max(1, cores))

    # Voila 0.5 builds its kernel manager class in init_settings from this module-level factory: the
    # one place to extend it (this process is ours alone).
    voila.app.voila_kernel_manager_factory = kernel_manager_factory

    class ClassroomPageHandler(TornadoVoilaHandler):
        async def get(self, path=None):
            manager = self.kernel_manager
            if manager.visitors >= args.max_visitors:
                self.set_status(503)
                self.set_header("Retry-After", str(RETRY_S))
                self.set_header("Content-Type", "text/html")
                self.finish(class_full_page(args.max_visitors, args.cull_idle))
                return
            self.xsrf_token  # sets the _xsrf cookie the page's unload sends, so its kernel shuts down
            visit = manager.arrive()
            try:
                return await super().get(path)
            finally:
                manager.leave_if_kernelless(visit)

    class ReadyHandler(tornado.web.RequestHandler):
        """200 once the server can give a visitor a rendered page at once (the first preheated
        kernel is warm, or preheating is off); 503 before. Starts no kernel."""

        def get(self):
            manager = self.settings["kernel_manager"]
            warm = manager.warm
            ready = warm > 0 or args.preheat == 0
            self.set_status(200 if ready else 503)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"ready": ready, "warm": warm, "preheat": args.preheat,
                                    "visitors": manager.visitors, "max_visitors": args.max_visitors}))

    class ClassroomVoila(voila.app.Voila):
        def init_handlers(self):
            handlers = [(READY_PATH, ReadyHandler)]
            for rule in super().init_handlers():
                if rule[1] is TornadoVoilaHandler:
                    rule = (rule[0], ClassroomPageHandler, *rule[2:])
                handlers.append(rule)
            return handlers

    ClassroomVoila.launch_instance(voila_argv(args.notebook, args.port, not args.no_browser, args.cull_idle)
                                   + voila_extra)
    return 0


if __name__ == "__main__":
    sys.exit(run())
