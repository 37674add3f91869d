"""A fair race: one step budget, each optimizer at its own tuned lr, the same noise over several seeds;
its numbers checked against the exact theory of noisy linear iterations on a quadratic."""
from __future__ import annotations

import numpy as np
import pytest

import optiviz as ov
from optiviz.engine.noise_theory import expected_excess, noise_floor
from optiviz.engine.rates import predicted_rate


def test_every_optimizer_gets_the_same_budget_and_its_own_best_lr():
    race = ov.fair_race("quadratic", ("sgd", "momentum", "adam"), steps=120, seeds=3, grad_noise=0.0)
    assert race.paths.shape == (3, 3, 121, 2) and race.loss.shape == (3, 3, 121)
    for o in race.optimizers:
        sweep = race.tuning[o]
        assert race.hparams[o]["lr"] == sweep.best_lr == sweep.lrs[np.argmin(sweep.score)]
        assert len(sweep.lrs) == 21 and sweep.lrs.min() == pytest.approx(1e-4) and sweep.lrs.max() == pytest.approx(10)
        assert f"tuned {o}: lr 0.0001..10 (21 values)" in race.summary()
    assert race.hparams["momentum"]["momentum"] == 0.9  # only the lr is searched
    # without noise every seed runs the same path; the ranking follows the scores
    np.testing.assert_array_equal(race.paths[:, 0], race.paths[:, 2])
    assert list(race.ranking) == [race.optimizers[k] for k in np.argsort(race.score)]


def test_tuned_sgd_lr_is_the_fastest_stable_rate_the_theory_predicts():
    sweep = ov.tune_lr("quadratic", "sgd", steps=400, seeds=1)
    rates = predicted_rate("sgd", (1.0, 50.0), sweep.lrs)
    assert sweep.best_lr == sweep.lrs[np.argmin(np.where(rates < 1, rates, np.inf))]
    assert np.all(np.isinf(sweep.score[rates > 1]))  # past 2/L every run diverged
    assert not sweep.at_edge


def test_noise_makes_seeds_differ_and_their_mean_follows_the_exact_expectation():
    hp = {"sgd": {"lr": 0.02}, "momentum": {"lr": 0.002, "momentum": 0.9}}
    race = ov.fair_race("quadratic", ("sgd", "momentum"), steps=300, seeds=256, grad_noise=1.0, tune=False,
                        hparams=hp)
    assert not np.allclose(race.paths[0, 0], race.paths[0, 1])
    for k, o in enumerate(race.optimizers):
        theory = race.expected(o)
        np.testing.assert_allclose(race.mean_excess[k, [1, 10, 50]], theory[[1, 10, 50]], rtol=0.02)
        # near the noise floor the mean of 256 seeds is within ~10% of the expectation
        assert race.mean_excess[k, -100:].mean() == pytest.approx(theory[-100:].mean(), rel=0.1)
    assert race.mean_path.shape == (2, 301, 2)


def test_common_noise_draws_every_optimizer_sees_the_same_noise():
    # sgd, and momentum with momentum 0, take the same update: only the same draws give the same paths
    hp = {"sgd": {"lr": 0.01}, "momentum": {"lr": 0.01, "momentum": 0.0}}
    race = ov.fair_race("quadratic", ("sgd", "momentum"), steps=50, seeds=4, grad_noise=2.0, tune=False, hparams=hp)
    np.testing.assert_allclose(race.paths[0], race.paths[1], atol=1e-6)


def test_noise_floor_is_the_stationary_expectation_and_small_lr_sgd_matches_the_textbook():
    for o, lr in (("sgd", 0.02), ("momentum", 0.002), ("nesterov", 0.002)):
        long_run = expected_excess(o, (1.0, 50.0), lr, start=(-8.0, 2.0), steps=8000, grad_noise=1.0)[-1]
        assert noise_floor(o, (1.0, 50.0), lr, grad_noise=1.0) == pytest.approx(long_run, rel=1e-6)
    # SGD with a small lr: E[f - f*] -> lr sigma^2 d / 4 (d = 2 directions)
    assert noise_floor("sgd", (1.0, 50.0), 1e-4, grad_noise=1.0) == pytest.approx(1e-4 * 2 / 4, rel=0.01)
    assert noise_floor("sgd", (1.0, 50.0), 0.05, grad_noise=1.0) == float("inf")  # past 2/L


@pytest.mark.parametrize("kwargs, match", [
    ({"seeds": 0}, "seeds"), ({"steps": 0}, "steps"), ({"lrs": [-1.0, 0.1]}, "lrs"),
    ({"optimizers": ("sgd", "lion")}, "optimizer"), ({"hparams": {"adam": {"lr": 0.1}}, "optimizers": "sgd"}, "hparams"),
    ({"grad_noise": -1.0}, "grad_noise"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ov.fair_race("quadratic", **{"optimizers": ("sgd",), "steps": 10, **kwargs})
