"""Trainer benchmarks (prints numbers; not a test).

(a) accuracy: the default convnet on the bundled subset, the reference recipe (Nesterov 0.9,
    lr 0.05, batch 128), every probe on at its default cadence: test accuracy per epoch and the
    wall time. Target: >= 0.55 within 10 epochs in <= 20 s on 2 CPU cores.
(b) monitoring cost: images/s of ov.Trainer with every probe on at its default cadence against a
    plain torch loop of the same net, data and batch size, in the same process, measured in
    rounds of one epoch per loop (order rotated), so that load from other processes hits all alike;
    medians of the paired ratios, by wall time and by this process's CPU time (the CPU-time
    ratio is the steadier one on a shared machine, with one thread). Target: >= 0.9x.

    python benchmarks/bench_trainer.py [--epochs 10] [--chunks 4] [--threads N] [--device cpu] [--subset N]

The machine is shared: run it a couple of times and read the load average printed with it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

import optiviz as ov
from optiviz.engine.devices import synchronize

RECIPE = dict(optimizer="nesterov", lr=0.05, momentum=0.9, batch_size=128)


def accuracy(data, epochs: int, seed: int) -> None:
    t0 = time.perf_counter()
    run = ov.train(model="convnet", epochs=epochs, data=data, seed=seed, **RECIPE)
    synchronize(data.device)
    wall = time.perf_counter() - t0
    acc = run.history["test_acc"]
    first = next((i + 1 for i, a in enumerate(acc) if a >= 0.55), None)
    at = run.history["epoch_step"]
    print(f"(a) accuracy, seed {seed}: test acc per epoch {[round(float(a), 3) for a in acc]}")
    print(f"    {wall:.1f} s for {epochs} epochs ({len(run.history['train_loss'])} steps, "
          f"{len(run.probes)} probe records, val acc {float(run.history['val_acc'][-1]):.3f}); "
          f">= 0.55 first at epoch {first}" + (f" (step {int(at[first - 1])})" if first else ""))


class PlainLoop:
    """What one would write by hand: randperm on the device, index, forward, backward, step."""

    def __init__(self, data, seed: int, test_each_epoch: bool):
        self.data, self.test_each_epoch = data, test_each_epoch
        self.model = ov.build_model("convnet", seed=seed).to(data.device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=RECIPE["lr"], momentum=RECIPE["momentum"], nesterov=True)
        self.gen = torch.Generator(device=data.device).manual_seed(seed)
        self.bs = RECIPE["batch_size"]

    def epoch(self) -> int:
        x, y, m = self.data.x_train, self.data.y_train, self.model
        m.train()
        perm = torch.randperm(len(y), generator=self.gen, device=self.data.device)
        steps = len(y) // self.bs
        for i in range(steps):
            idx = perm[i * self.bs:(i + 1) * self.bs]
            loss = F.cross_entropy(m(x[idx]), y[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            loss.item()  # the trainer reads every loss (divergence check, history): so does this loop
        if self.test_each_epoch:
            m.eval()
            with torch.inference_mode():
                correct = sum((m(self.data.x_test[i:i + 500]).argmax(1) == self.data.y_test[i:i + 500]).sum()
                              for i in range(0, self.data.n_test, 500))
            float(correct)
        return steps * self.bs


class TrainerLoop:
    def __init__(self, data, seed: int, **kw):
        self.trainer = ov.Trainer("convnet", data, seed=seed, divergence_factor=None, **RECIPE, **kw)

    def epoch(self) -> int:
        run = self.trainer.run(epochs=1)
        return self.trainer.steps_per_epoch * self.trainer.batches.batch_size if run else 0


def timed(loop, device) -> tuple[int, float, float]:
    synchronize(device)
    t0, c0 = time.perf_counter(), time.process_time()
    n = loop.epoch()
    synchronize(device)
    return n, time.perf_counter() - t0, time.process_time() - c0


PLAIN, PLAIN_TEST = "plain loop, no evaluation", "plain loop + test acc each epoch"
PROBES, FULL = "Trainer, probes only (no val/test)", "Trainer, all monitoring (defaults)"


def monitoring_cost(data, chunks: int, seed: int) -> None:
    loops = {
        PLAIN: PlainLoop(data, seed, test_each_epoch=False),
        PLAIN_TEST: PlainLoop(data, seed, test_each_epoch=True),
        PROBES: TrainerLoop(data, seed, test_each_epoch=False, val_every=10**9),
        FULL: TrainerLoop(data, seed),
    }
    for loop in loops.values():  # warm-up: allocator, first-probe histogram edges, lazy imports
        timed(loop, data.device)
    names = list(loops)
    wall = {k: [] for k in loops}
    cpu = {k: [] for k in loops}
    for r in range(chunks):
        for name in names[r % 4:] + names[:r % 4]:  # rotate the order: no loop always runs first
            n, dt, ct = timed(loops[name], data.device)
            wall[name].append(n / dt)
            cpu[name].append(n / ct)
    tr = loops[FULL].trainer
    print(f"(b) monitoring cost: {chunks} rounds of one epoch per loop, order rotated; probe_every={tr.probe_every}, "
          f"val each epoch ({data.n_val} images), test each epoch ({data.n_test} images)")
    for name in names:
        print(f"    {name:38s} {statistics.median(wall[name]):7.0f} images/s wall, "
              f"{statistics.median(cpu[name]):7.0f} per CPU-second (medians)")

    def ratio(a: str, b: str, rates: dict) -> float:  # median over rounds of the paired ratio
        return statistics.median(x / y for x, y in zip(rates[a], rates[b]))

    for label, a, b in [("all monitoring vs plain loop with the same per-epoch test accuracy", FULL, PLAIN_TEST),
                        ("per-layer probes alone vs bare plain loop", PROBES, PLAIN),
                        ("all monitoring (incl. val + test evaluation) vs bare plain loop", FULL, PLAIN)]:
        print(f"    ratio, {label:66s} wall {ratio(a, b, wall):.3f}   cpu {ratio(a, b, cpu):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--chunks", type=int, default=6)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", choices=("accuracy", "cost"), default=None)
    ap.add_argument("--subset", type=int, default=None,
                    help="the first N training images (N/4 val and test): a quick run, as gpu_check.sh --cpu makes")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = ov.load_cifar10(device=args.device)
    if args.subset:
        quarter = max(1, args.subset // 4)
        data = data.subset(min(args.subset, data.n_train), min(quarter, data.n_val), min(quarter, data.n_test))
    print(f"torch {torch.__version__}, device {data.device}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}; "
          f"{data.n_train} train / {data.n_val} val / {data.n_test} test images")
    if args.skip != "accuracy":
        accuracy(data, args.epochs, args.seed)
    if args.skip != "cost":
        monitoring_cost(data, args.chunks, args.seed)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
