"""K small nets trained at once vs one after another (prints numbers; not a test).

Same data (the bundled CIFAR-10 subset), same minibatches, same hyperparameters per net (lr
log-spaced, weight decay and dropout varied), same process. "At once" is ov.train_many's
ManyTrainer; "one after another" is the plain torch loop one would write by hand for each net
(build_model, torch.optim.SGD, index the batch, forward, backward, step), which is the fastest
single-run path here (the Trainer adds probes and host reads per step; its time is printed too
with --trainer). Both evaluate the validation split once per epoch.
Target: time(at once) / time(one after another) <= 0.7 on 2 CPU cores at K = 16.

The two are measured in interleaved rounds (alternating which goes first) so that load from other
processes on a shared machine hits both alike; the ratio of medians and the best round are printed.

    python benchmarks/bench_many_nets.py [--k 16] [--epochs 1] [--rounds 3] [--model mlp]
                                         [--width N] [--threads N] [--device cpu] [--trainer] [--subset N]

--accuracy instead prints what the searches and the ensemble table reach on the bundled subset
(the lectures' 2-layer net; the lecture quotes ~53% validation accuracy on full CIFAR-10 after the
fine search, and its ensemble table is for a VGG net):
    random vs grid search with one budget of 1-epoch runs, a coarse-to-fine random search with
    the same budget, and ov.ensemble_table() at its defaults.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

import optiviz as ov
from optiviz.engine.devices import synchronize
from optiviz.training.batched import ManyTrainer
from optiviz.training.data import make_generator
from optiviz.training.models import build_model


def settings(k: int) -> dict[str, np.ndarray]:
    return dict(lr=np.geomspace(1e-3, 3e-2, k), weight_decay=np.geomspace(1e-5, 1e-2, k)[::-1].copy(),
                dropout=np.linspace(0.0, 0.5, k))


def at_once(data, k, epochs, model_kw, batch_size, seed=0) -> float:
    hp = settings(k)
    t0 = time.perf_counter()
    trainer = ManyTrainer(model_kw["model"], data, lr=hp["lr"], weight_decay=hp["weight_decay"], dropout=hp["dropout"],
                          optimizer="momentum", momentum=0.9, batch_size=batch_size, seed=seed, **model_kw["kw"])
    trainer.run(epochs=epochs)
    synchronize(data.device)
    return time.perf_counter() - t0


def one_after_another(data, k, epochs, model_kw, batch_size, seed=0) -> float:
    hp = settings(k)
    dev = data.device
    t0 = time.perf_counter()
    for i in range(k):
        net = build_model(model_kw["model"], seed=seed + i, dropout=float(hp["dropout"][i]), **model_kw["kw"]).to(dev)
        net.set_generator(make_generator(dev, seed + i + 1))
        opt = torch.optim.SGD(net.parameters(), lr=float(hp["lr"][i]), momentum=0.9,
                              weight_decay=float(hp["weight_decay"][i]))
        gen = make_generator(dev, seed)
        n = data.n_train
        for _ in range(epochs):
            net.train()
            perm = torch.randperm(n, generator=gen, device=dev)
            for s in range(n // batch_size):
                idx = perm[s * batch_size:(s + 1) * batch_size]
                loss = F.cross_entropy(net(data.x_train[idx]), data.y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                float((net(data.x_val).argmax(1) == data.y_val).float().mean())
    synchronize(dev)
    return time.perf_counter() - t0


def with_trainer(data, k, epochs, model_kw, batch_size, seed=0) -> float:
    hp = settings(k)
    t0 = time.perf_counter()
    for i in range(k):
        net = build_model(model_kw["model"], seed=seed + i, dropout=float(hp["dropout"][i]), **model_kw["kw"])
        ov.train(net, "momentum", epochs=epochs, data=data, lr=float(hp["lr"][i]), momentum=0.9,
                 weight_decay=float(hp["weight_decay"][i]), batch_size=batch_size, seed=seed, probe_every=0,
                 test_each_epoch=False)
    synchronize(data.device)
    return time.perf_counter() - t0


def accuracy_report(data, budget: int) -> None:
    from optiviz.training.ensembles import ensemble_table, table_text
    from optiviz.training.search import LECTURE_SPACE, Stage, grid_search, random_search

    print(f"search space {LECTURE_SPACE}, budget {budget} run-epochs, mlp (50 hidden), batch 128")
    fine = [Stage(1, 0.3), Stage(3, 0.3, 0.3), Stage(10, 0.4, 0.15)]
    for name, fn in (("grid, 1-epoch runs", lambda: grid_search(budget, LECTURE_SPACE, data=data)),
                     ("random, 1-epoch runs", lambda: random_search(budget, LECTURE_SPACE, data=data)),
                     ("random, coarse to fine (1, 3, 10 epochs)", lambda: random_search(budget, LECTURE_SPACE, fine, data=data))):
        t0 = time.perf_counter()
        res = fn()
        best = res.best
        hp = ", ".join(f"{k} {v:.3g}" for k, v in best.hparams.items())
        print(f"  {name}: plan {res.plan}, {sum(p.aborted for p in res.points)} of {len(res.points)} aborted, "
              f"best val acc {best.val_acc:.3f} ({hp}, {best.epochs} epochs), "
              f"{len(np.unique(res.values('lr')))} distinct lrs, {time.perf_counter() - t0:.1f} s")
        if res.warning:
            print(f"    warning: {res.warning}")
    t0 = time.perf_counter()
    rows = ensemble_table("mlp", data)
    print(f"ensemble table (mlp, defaults), {time.perf_counter() - t0:.1f} s:")
    print(table_text(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default="mlp", choices=("mlp", "deep_mlp", "convnet"))
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--trainer", action="store_true", help="also time one after another through ov.train")
    ap.add_argument("--accuracy", action="store_true", help="print search and ensemble accuracies instead")
    ap.add_argument("--budget", type=int, default=320, help="run-epochs per search with --accuracy")
    ap.add_argument("--subset", type=int, default=None,
                    help="the first N training images (N/4 val and test): a quick run, as gpu_check.sh --cpu makes")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = ov.load_cifar10(device=args.device)
    if args.subset:
        quarter = max(1, args.subset // 4)
        data = data.subset(min(args.subset, data.n_train), min(quarter, data.n_val), min(quarter, data.n_test))
    if args.accuracy:
        accuracy_report(data, args.budget)
        return
    model_kw = {"model": args.model, "kw": {} if args.width is None else {"width": args.width}}
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"{args.model} x {args.k}, {args.epochs} epoch(s) of {data.n_train} images, batch {args.batch_size}, "
          f"device {data.device}, torch threads {torch.get_num_threads()}, load average {load[0]:.1f}")
    # warm up both paths (allocator, oneDNN primitives)
    warm = data.subset(min(512, data.n_train), min(64, data.n_val), min(64, data.n_test))
    at_once(warm, args.k, 1, model_kw, args.batch_size)
    one_after_another(warm, min(args.k, 2), 1, model_kw, args.batch_size)
    many, seq, trainer = [], [], []
    for r in range(args.rounds):
        order = (at_once, one_after_another) if r % 2 == 0 else (one_after_another, at_once)
        for fn in order:
            t = fn(data, args.k, args.epochs, model_kw, args.batch_size)
            (many if fn is at_once else seq).append(t)
        if args.trainer:
            trainer.append(with_trainer(data, args.k, args.epochs, model_kw, args.batch_size))
        print(f"  round {r + 1}: at once {many[-1]:.2f} s, one after another {seq[-1]:.2f} s, "
              f"ratio {many[-1] / seq[-1]:.2f}" + (f", through ov.train {trainer[-1]:.2f} s" if trainer else ""))
    med = statistics.median(many) / statistics.median(seq)
    best = min(m / s for m, s in zip(many, seq))
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"time ratio (at once / one after another): {med:.2f} (medians), best round {best:.2f}; "
          f"target <= 0.7; load average now {load[0]:.1f}")


if __name__ == "__main__":
    main()
