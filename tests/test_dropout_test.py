"""Test-time dropout (issue 16, item 3): MC averaging vs weight scaling vs inverted dropout, and E[output]."""
import pytest

from optiviz.training.dropout_test import dropout_test_time


@pytest.fixture(scope="module")
def result(cifar):
    return dropout_test_time(cifar, p=0.5, epochs=2, width=64, samples=(1, 50), n_train=2500)


def test_monte_carlo_agrees_with_weight_scaling(result):
    scaled = result.accuracy("vanilla: weight scaling (x q at test)")
    assert scaled > 0.25  # it learned something (chance is 0.1)
    for mode in ("vanilla", "inverted"):
        many = result.accuracy(f"{mode}: Monte Carlo, 50 masked passes")
        one = result.accuracy(f"{mode}: Monte Carlo, 1 masked passes")
        assert one < many - 0.02  # one thinned net is a worse predictor than the average
    assert abs(result.accuracy("vanilla: Monte Carlo, 50 masked passes") - scaled) < 0.03
    assert abs(result.accuracy("inverted: Monte Carlo, 50 masked passes") - result.accuracy("inverted: unchanged test pass")) < 0.03


def test_forgetting_the_scaling_shows_in_the_loss(result):
    assert result.rows["vanilla: test pass not scaled (wrong)"][1] > result.rows["vanilla: weight scaling (x q at test)"][1] + 0.1


def test_expected_training_output_matches_the_test_pass(result):
    v, i = result.expected["vanilla"], result.expected["inverted"]
    assert v.train == pytest.approx(v.test, rel=0.02) and v.test == pytest.approx(0.5 * v.x, rel=1e-6)
    assert i.train == pytest.approx(i.test, rel=0.02) and i.test == pytest.approx(i.x, rel=1e-6)
    assert "q x" in v.answer


def test_bad_input_names_the_parameter(cifar):
    for kwargs, name in ((dict(p=0.0), "p"), (dict(p=1.0), "p"), (dict(epochs=0), "epochs"), (dict(samples=()), "samples"),
                         (dict(samples=(0,)), "samples"), (dict(n_train=0), "n_train")):
        with pytest.raises(ValueError, match=name):
            dropout_test_time(cifar, **kwargs)
