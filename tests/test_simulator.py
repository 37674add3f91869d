"""The simulator: contract shapes, torch.optim parity, status rules, steering and bad input."""
import numpy as np
import pytest
import torch

import optiviz as ov

F64 = torch.float64


def torch_loop(surface, opt_factory, start, steps, lr_at=None):
    """Reference: one torch.optim instance on a (1, 2) float64 tensor, gradient from the surface."""
    surf = ov.get_surface(surface) if isinstance(surface, str) else surface
    p = torch.tensor([list(start)], dtype=F64)
    p.grad = torch.zeros_like(p)
    opt = opt_factory([p])
    path = [p.detach().clone()[0]]
    for t in range(1, steps + 1):
        if lr_at is not None:
            for g in opt.param_groups:
                g["lr"] = lr_at(t)
        p.grad.copy_(surf.gradient(p))
        opt.step()
        path.append(p.detach().clone()[0])
    return torch.stack(path).numpy()


def test_contract_shapes_single_run():
    run = ov.simulate("rosenbrock", "adam", start=(-1.5, 2.0), steps=500, lr=0.01, dtype=F64)
    assert run.path.shape == (501, 2)
    assert run.loss.shape == (501,)
    assert run.status in ("running", "converged", "diverged")
    assert isinstance(run.diverged_at, int) and run.diverged_at == -1
    np.testing.assert_allclose(run.path[0], [-1.5, 2.0])
    assert run.loss[-1] < run.loss[0] / 2


def test_simulate_matches_torch_adam_on_rosenbrock():
    run = ov.simulate("rosenbrock", "adam", start=(-1.5, 2.0), steps=1000, lr=0.01, dtype=F64)
    ref = torch_loop("rosenbrock", lambda ps: torch.optim.Adam(ps, lr=0.01), (-1.5, 2.0), 1000)
    np.testing.assert_allclose(run.path, ref, rtol=1e-9, atol=1e-12)


def test_batched_rows_equal_single_runs_exactly():
    lrs = np.array([1e-3, 3e-3, 1e-2, 3e-2])
    moms = np.array([0.0, 0.5, 0.9, 0.95])
    run = ov.simulate("beale", "momentum", start=(1.0, 1.5), steps=300, lr=lrs, momentum=moms, dtype=F64)
    assert run.path.shape == (4, 301, 2) and run.loss.shape == (4, 301)
    assert run.status.shape == (4,) and run.diverged_at.shape == (4,)
    for i in range(4):
        single = ov.simulate("beale", "momentum", start=(1.0, 1.5), steps=300, lr=lrs[i], momentum=moms[i], dtype=F64)
        np.testing.assert_array_equal(run.path[i], single.path)


def test_several_optimizers_share_one_tensor():
    run = ov.simulate("quadratic", ["sgd", "momentum", "adam"], steps=50, lr=0.01, dtype=F64)
    assert run.path.shape == (3, 51, 2)
    assert run.optimizers == ("sgd", "momentum", "adam")
    alone = ov.simulate("quadratic", "momentum", steps=50, lr=0.01, dtype=F64)
    np.testing.assert_array_equal(run.path[1], alone.path)


def test_divergence_stops_rows_and_keeps_outputs_finite():
    lrs = np.array([1e-3, 10.0])
    run = ov.simulate("quadratic", "sgd", start=(-3.0, 1.0), steps=200, lr=lrs)
    assert list(run.status) == ["running", "diverged"] or run.status[0] == "converged"
    assert run.status[1] == "diverged"
    k = int(run.diverged_at[1])
    assert 1 <= k <= 5
    assert np.isfinite(run.path).all() and np.isfinite(run.loss).all()
    # a diverged row stays at its last accepted point
    np.testing.assert_array_equal(run.path[1, k:], np.broadcast_to(run.path[1, k - 1], run.path[1, k:].shape))
    assert run.diverged_at[0] == -1


def test_divergence_is_leaving_the_bound_not_three_times_the_loss():
    surf = ov.get_surface("quadratic")
    run = ov.simulate(surf, "sgd", start=surf.start, steps=200, lr=2.2 / surf.params["condition"], dtype=F64)
    # |1 - lr * 50| = 1.2: the steep direction's amplitude grows by 1.2 a step; the loss passes 3x its
    # start at step 6, yet the run is only called diverged once it is 100 half-widths away
    assert run.status == "diverged"
    assert np.argmax(run.loss > 3 * run.loss[0]) < 10 < run.diverged_at
    (x0, x1), (y0, y1) = surf.domain
    bound = 100 * max(x1 - x0, y1 - y0) / 2
    dist = np.linalg.norm(run.path, axis=-1)
    assert dist[run.diverged_at - 1] <= bound  # frozen at the last point inside
    assert np.all(dist[: run.diverged_at] <= bound) and np.all(np.isfinite(run.loss))


def test_convergence_is_reported_with_its_step():
    run = ov.simulate("quadratic", "adam", steps=3000, lr=0.05, dtype=F64)
    assert run.status == "converged"
    assert 0 < run.converged_at <= 3000
    assert np.linalg.norm(run.path[-1] - np.asarray(ov.get_surface("quadratic").minima[0])) < 1e-3


def test_mid_run_lr_change_applies_from_next_step():
    start = (-1.0, 1.0)
    sim = ov.Simulator("rosenbrock", "momentum", start=start, lr=1e-3, momentum=0.9, dtype=F64)
    first = sim.run(100)
    sim.set_hparams("momentum", lr=2e-3)
    second = sim.run(100)
    ref = torch_loop("rosenbrock", lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9), start, 200,
                     lr_at=lambda t: 1e-3 if t <= 100 else 2e-3)
    np.testing.assert_allclose(first.path[0], ref[:101], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(second.path[0], ref[100:], rtol=1e-9, atol=1e-12)
    assert second.hparams["momentum"]["lr"] == 2e-3 and sim.get_hparams("momentum")["lr"] == 2e-3
    sim.restart()  # a restart keeps what was chosen
    assert sim.t == 0 and sim.get_hparams("momentum")["lr"] == 2e-3


def test_advance_records_chunks_consistent_with_run():
    sim = ov.Simulator("himmelblau", ["sgd", "adam"], start=(0.0, 0.0), lr=0.01, dtype=F64)
    recs = [sim.advance(25) for _ in range(4)]
    pts = np.concatenate([r.points for r in recs])
    whole = ov.simulate("himmelblau", ["sgd", "adam"], start=(0.0, 0.0), steps=100, lr=0.01, dtype=F64)
    np.testing.assert_array_equal(pts.transpose(1, 0, 2), whole.path[:, 1:])
    assert list(recs[-1].steps) == list(range(76, 101))
    lengths = np.concatenate([r.step_length for r in recs])
    np.testing.assert_allclose(lengths, np.linalg.norm(np.diff(whole.path, axis=1), axis=-1).T)


def test_restart_resets_state_but_keeps_settings():
    sim = ov.Simulator("rosenbrock", "adam", start=(-1.0, 1.0), lr=0.01, dtype=F64)
    a = sim.run(50)
    sim.set_hparams("adam", lr=0.02)
    sim.restart((0.5, -0.5))
    b = sim.run(50)
    ref = ov.simulate("rosenbrock", "adam", start=(0.5, -0.5), steps=50, lr=0.02, dtype=F64)
    np.testing.assert_array_equal(b.path[0], ref.path)
    assert sim.t == 50 and a.path.shape == b.path.shape


def test_grad_noise_is_seeded():
    a = ov.simulate("quadratic", "sgd", steps=50, lr=0.01, grad_noise=0.5, seed=1)
    b = ov.simulate("quadratic", "sgd", steps=50, lr=0.01, grad_noise=0.5, seed=1)
    c = ov.simulate("quadratic", "sgd", steps=50, lr=0.01, grad_noise=0.5, seed=2)
    clean = ov.simulate("quadratic", "sgd", steps=50, lr=0.01)
    np.testing.assert_array_equal(a.path, b.path)
    assert not np.allclose(a.path, c.path)
    assert not np.allclose(a.path, clean.path)


def test_transforms_and_schedule_compose():
    clipped = ov.simulate("cliff", "sgd", steps=100, lr=0.05, transforms=[ov.clip_by_norm(1.0)], dtype=F64)
    steps = np.linalg.norm(np.diff(clipped.path, axis=0), axis=1)
    assert steps.max() <= 0.05 * 1.0 + 1e-12
    sched = ov.simulate("quadratic", "sgd", steps=100, lr=0.01, schedule=ov.make_schedule("exponential", k=0.05), dtype=F64)
    plain = ov.simulate("quadratic", "sgd", steps=100, lr=0.01, dtype=F64)
    assert np.linalg.norm(sched.path[-1] - sched.path[-2]) < np.linalg.norm(plain.path[-1] - plain.path[-2])


def test_expression_surface():
    run = ov.simulate("x**2 + 10*y**2", "sgd", start=(2.0, 1.0), steps=300, lr=0.04, dtype=F64)
    assert np.linalg.norm(run.path[-1]) < 1e-3
    with pytest.raises(ValueError, match="expression"):
        ov.simulate("__import__('os').system('id')", "sgd")


def test_float32_default_and_float64_on_request():
    assert ov.Simulator("quadratic", "sgd").x.dtype == torch.float32
    assert ov.Simulator("quadratic", "sgd", dtype=F64).x.dtype == F64
    assert ov.Simulator("quadratic", "sgd").device.type == ov.pick_device().type


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(optimizer="lbfgs"), "optimizer"),
        (dict(surface="nope"), "surface"),
        (dict(lr=-0.1), "lr"),
        (dict(lr=0.0), "lr"),
        (dict(optimizer="momentum", momentum=1.0), "momentum"),
        (dict(optimizer="adam", betas=(0.9, 1.0)), "beta"),
        (dict(optimizer="adam", eps=0.0), "eps"),
        (dict(steps=-1), "steps"),
        (dict(start=(1.0, 2.0, 3.0)), "start"),
        (dict(start="here"), "start"),
        (dict(optimizer="sgd", betas=(0.9, 0.99)), "betas"),
        (dict(lr=np.array([0.1, 0.2]), start=np.zeros((3, 2))), "length"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, word):
    args = dict(surface="quadratic", optimizer="sgd", steps=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        ov.simulate(args.pop("surface"), args.pop("optimizer"), **args)
