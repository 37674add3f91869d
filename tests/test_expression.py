"""User expressions: right values and gradients, and every kind of bad or hostile text is a
ValueError that says what is allowed, without the text ever being evaluated."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from optiviz.engine.expression import FUNCTIONS, MAX_LENGTH, compile_expression
from optiviz.engine.hparams import OPTIMIZERS
from optiviz.engine.optimizers import torch_optimizer
from optiviz.engine.surface import Surface
from optiviz.engine.surfaces import SURFACES

F64 = torch.float64
PTS = torch.tensor([[0.3, -1.2], [2.0, 0.5], [-1.7, 2.2], [0.9, 0.1]], dtype=F64)


def _allowed_message(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert msg.startswith("expression: "), msg
    return msg


@pytest.mark.parametrize(
    "text,reference",
    [
        ("x**2 + 10*y**2", lambda x, y: x**2 + 10 * y**2),
        ("sin(x)*cos(y)", lambda x, y: torch.sin(x) * torch.cos(y)),
        ("-x^2 + y", lambda x, y: -(x**2) + y),  # ^ binds like **: tighter than unary minus
        ("2^-1*x - y/4", lambda x, y: 0.5 * x - y / 4),
        ("x^3 - 3*x*y^2", lambda x, y: x**3 - 3 * x * y**2),
        ("pi*x + e*y", lambda x, y: math.pi * x + math.e * y),
        ("exp(-(x^2+y^2)/2) * tanh(x)", lambda x, y: torch.exp(-(x**2 + y**2) / 2) * torch.tanh(x)),
        ("sqrt(1 + x^2 + y^2) + abs(x - y)", lambda x, y: torch.sqrt(1 + x**2 + y**2) + (x - y).abs()),
        ("log(1 + x^2) + arctan(y) + atan(x)", lambda x, y: torch.log1p(x**2) + torch.atan(y) + torch.atan(x)),
        ("max(x, y) + min(x, 0.5) + hypot(x, y)", lambda x, y: torch.maximum(x, y) + torch.clamp(x, max=0.5) + torch.hypot(x, y)),
        ("atan2(y, x) + arctan2(1, x)", lambda x, y: torch.atan2(y, x) + torch.atan2(torch.ones_like(x), x)),
        ("sinh(x)/cosh(y) + sigmoid(x) + relu(y) + softplus(x)", lambda x, y: torch.sinh(x) / torch.cosh(y) + torch.sigmoid(x) + torch.relu(y) + torch.nn.functional.softplus(x)),
        ("x\n + y", lambda x, y: x + y),  # pasted over two lines
        ("+x - -y", lambda x, y: x + y),
        ("1e-3*x + 3", lambda x, y: 1e-3 * x + 3),
        ("(x**2)**3 + y", lambda x, y: x**6 + y),
    ],
)
def test_values_and_gradients(text, reference):
    s = compile_expression(text)
    x, y = PTS[:, 0], PTS[:, 1]
    expected = reference(x, y)
    assert torch.allclose(s.loss(PTS), expected, rtol=1e-12, atol=1e-12)
    p = PTS.clone().requires_grad_(True)
    (g_ref,) = torch.autograd.grad(reference(p[:, 0], p[:, 1]).sum(), p)
    f, g = s.loss_and_gradient(PTS)
    assert torch.allclose(f, expected, rtol=1e-12, atol=1e-12)
    assert torch.allclose(g, g_ref, rtol=1e-10, atol=1e-12)
    assert torch.equal(s.gradient(PTS), g)
    assert not f.requires_grad and not g.requires_grad


def test_rosenbrock_typed_by_a_user_matches_the_builtin():
    s = compile_expression("(1-x)^2 + 100*(y-x^2)^2", domain=((-2, 2), (-1, 3)))
    ref = SURFACES["rosenbrock"]
    xy = torch.rand(200, 2, dtype=F64) * 4 - torch.tensor([2.0, 1.0], dtype=F64)
    assert torch.allclose(s.loss(xy), ref.loss(xy), rtol=1e-12)
    assert torch.allclose(s.gradient(xy), ref.gradient(xy), rtol=1e-10, atol=1e-9)
    assert s.log_color  # most of the domain sits in the bottom 1% of the range


def test_every_table_function_compiles_and_differentiates():
    for name, (arity, _) in FUNCTIONS.items():
        args = ", ".join(["0.3*x + 0.2", "0.1*y + 0.4"][:arity])
        s = compile_expression(f"{name}({args}) + x^2 + y^2")
        f, g = s.loss_and_gradient(torch.tensor([[0.5, 0.5]], dtype=F64))
        assert torch.isfinite(f).all() and torch.isfinite(g).all(), name


def test_float32_batches_and_no_grad_modes():
    s = compile_expression("x^2 + 10*y^2")
    xy = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float32).reshape(1, 2, 2)
    f, g = s.loss_and_gradient(xy)
    assert f.shape == (1, 2) and g.shape == (1, 2, 2)
    assert f.dtype == g.dtype == torch.float32
    want = torch.tensor([[[2.0, 40.0], [6.0, -20.0]]])
    with torch.no_grad():
        assert torch.equal(s.gradient(xy), want)
    with torch.inference_mode():  # the simulator may step under inference mode
        inf_xy = xy.clone()
        assert torch.equal(s.gradient(inf_xy), want)
    assert not xy.requires_grad


def test_surface_fields():
    s = compile_expression("x^2 + y^2", name="bowl")
    assert isinstance(s, Surface)
    assert s.name == "bowl" and "x^2 + y^2" in s.title
    assert s.minima == () and s.f_min is None
    assert s.domain == ((-5.0, 5.0), (-5.0, 5.0))
    assert s.start == (-3.0, 3.0)  # 60% of the way to the top-left corner
    assert set(s.lrs) == set(OPTIMIZERS) and all(0 < v < 100 for v in s.lrs.values())
    assert s.params["expression"] == "x^2 + y^2"
    assert s.f_ref == pytest.approx(float(np.min(s.grid(200)[2])))
    assert s.f_ref < float(s.loss(torch.tensor(s.start)))


def test_start_avoids_where_the_loss_is_undefined():
    s = compile_expression("log(x) + y^2")  # only x > 0 is defined
    assert s.start[0] > 0
    f, g = s.loss_and_gradient(torch.tensor(s.start, dtype=F64))
    assert torch.isfinite(f) and torch.isfinite(g).all()
    z = s.grid(50)[2]
    assert np.isnan(z).any() and np.isfinite(z).any()  # left as NaN for the plot
    assert math.isfinite(s.f_ref)


def test_suggested_lrs_descend():
    for text in ("x^2 + y^2", "x^2 + 10*y^2", "sin(x)*cos(y)", "abs(x) + abs(y)", "e^x + y^2"):
        s = compile_expression(text)
        for opt, lr in s.lrs.items():
            p = torch.tensor(s.start, dtype=F64, requires_grad=True)
            o = torch_optimizer(opt, [p], lr=lr)
            f0 = float(s.loss(p.detach()))
            for _ in range(100):
                p.grad = s.gradient(p.detach())
                o.step()
                f = float(s.loss(p.detach()))
                assert f <= s.f_ref + 3.0 * (f0 - s.f_ref), (text, opt)  # the picture stays readable
            assert f < f0, (text, opt)


def test_custom_domain():
    s = compile_expression("x^2 + y^2", domain=((0, 4), (-1, 1)))
    assert s.domain == ((0.0, 4.0), (-1.0, 1.0))
    (x0, x1), (y0, y1) = s.domain
    assert x0 <= s.start[0] <= x1 and y0 <= s.start[1] <= y1
    xs, ys, z = s.grid(11)
    assert xs[0] == 0.0 and xs[-1] == 4.0 and z.shape == (11, 11)


@pytest.mark.parametrize(
    "domain,needle",
    [
        (((1, 0), (0, 1)), "domain xmin must be less than xmax"),
        (((0, 1), (2, 2)), "domain ymin must be less than ymax"),
        (((0, float("inf")), (0, 1)), "domain xmax must be finite"),
        (((0, float("nan")), (0, 1)), "domain xmax must be finite"),
        (((0, 1),), r"domain must be \(\(xmin, xmax\), \(ymin, ymax\)\)"),
        ("big", r"domain must be \(\(xmin, xmax\), \(ymin, ymax\)\)"),
        (((0, "a"), (0, 1)), "domain xmax must be a number"),
        (((0, 1e9), (0, 1)), r"domain xmax must be in \[-1e\+06, 1e\+06\]"),
    ],
)
def test_bad_domains(domain, needle):
    with pytest.raises(ValueError, match=needle):
        compile_expression("x^2 + y^2", domain=domain)


BAD = [
    ("__import__('os').system('id')", "calling anything but the listed functions"),
    ("os.system('id')", "calling anything but the listed functions"),
    ("x.real", "attribute access"),
    ("x.__class__.__bases__", "attribute access"),
    ("x[0]", "indexing"),
    ("lambda: x", "lambda"),
    ("[x for x in y]", "comprehensions"),
    ("sum(t for t in (x, y))", "unknown function 'sum'"),
    ("(t for t in (x, y))", "comprehensions"),
    ("'abc'", "strings"),
    ("x + 'a'", "strings"),
    ("f'{x}'", "strings"),
    ("b'x'", "strings"),
    ("sin(x=1)", "keyword arguments"),
    ("sin(*x)", "starred arguments"),
    ("max(*[x, y])", "starred arguments"),
    ("exec('1')", "unknown function 'exec'"),
    ("eval('x')", "unknown function 'eval'"),
    ("open('/etc/passwd')", "unknown function 'open'"),
    ("getattr(x, 'real')", "unknown function 'getattr'"),
    ("z + 1", "unknown name 'z'"),
    ("X + y", "unknown name 'X'"),
    ("__builtins__", "unknown name '__builtins__'"),
    ("sin", "sin is a function"),
    ("sin(x, y)", "sin takes 1 argument, got 2"),
    ("atan2(x)", "atan2 takes 2 arguments, got 1"),
    ("x ** 101", "exponents larger than 100"),
    ("x ^ 1000", "exponents larger than 100"),
    ("x ** -(50*3)", "exponents larger than 100"),
    ("2 ** 2 ** 10", "power towers"),
    ("9^9^9", "power towers"),
    ("x ** y ** 2", "power towers"),
    ("2 ** (x ** 2)", "power towers"),
    ("(x ** 50) ** 50", "power towers"),
    ("(x ** y) ** 2", "power towers"),
    ("x if y else 1", "if/else"),
    ("x < y", "comparisons"),
    ("x and y", "and/or"),
    ("not x", "the operator Not"),
    ("~x", "the operator Invert"),
    ("x % 2", "the operator Mod"),
    ("x // 2", "the operator FloorDiv"),
    ("x @ y", "the operator MatMult"),
    ("x | y", "the operator BitOr"),
    ("x << 2", "the operator LShift"),
    ("True * x", "the constant True"),
    ("None", "the constant None"),
    ("1j * x", "the constant 1j"),
    ("(x, y)", "tuples"),
    ("[x, y]", "lists"),
    ("{x, y}", "sets"),
    ("{x: 1}", "dicts"),
    ("(z := x)", "assignment"),
    ("1e400 * x", "too large for a float"),
    ("9" * 400 + " * x", "too large for a float"),
    ("x = 1", "cannot parse"),
    ("x +", "cannot parse"),
    ("x y", "cannot parse"),
    ("x\x00", "cannot parse"),
    ("import os", "cannot parse"),
    ("x; y", "cannot parse"),
    ("", "empty"),
    ("   \n ", "empty"),
    ("x + " * 130 + "x", "longer than 500 characters"),
    ("-" * 200 + "x", "nesting deeper than 64"),
    ("sin(" * 70 + "x" + ")" * 70, "nesting deeper than 64"),
    ("(" * 240 + "x" + ")" * 240, "cannot parse"),
    ("1 / 0 + x", "the constant part '1 / 0' is not a finite number"),
    ("log(0) + x", "the constant part 'log(0)' is not a finite number"),
]


@pytest.mark.parametrize("text,needle", BAD, ids=[repr(t[:30]) for t, _ in BAD])
def test_bad_expressions_are_refused(text, needle):
    with pytest.raises(ValueError) as err:
        compile_expression(text)
    msg = _allowed_message(err)
    assert needle in msg, msg
    if "constant" not in needle:  # the refusal says what is allowed
        assert "the variables x and y" in msg and "sin" in msg and "pi" in msg


def test_hostile_text_is_never_run(tmp_path):
    marker = tmp_path / "pwned"
    for text in (
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        f"[__import__('os').system('touch {marker}') for _ in (1,)]",
        f"x + (lambda: __import__('os').system('touch {marker}'))()",
    ):
        with pytest.raises(ValueError):
            compile_expression(text)
    assert not marker.exists()


def test_non_string_is_refused():
    for bad in (None, 3, b"x", ["x"]):
        with pytest.raises(ValueError, match="expression: must be a string"):
            compile_expression(bad)


def test_text_length_limit_is_exactly_500():
    ok = "x" + " " * (MAX_LENGTH - 1)
    assert len(ok) == MAX_LENGTH
    compile_expression(ok)
    with pytest.raises(ValueError, match="longer than 500"):
        compile_expression(ok + " ")


@pytest.mark.parametrize(
    "text,needle",
    [
        ("1 + 2", "is a constant"),
        ("pi", "is a constant"),
        ("sin(pi/2)", "is a constant"),
        ("x - x", "is constant on the domain"),
        ("0 * x + 0 * y", "is constant on the domain"),
        ("log(-1 - x^2)", "is not finite anywhere on the domain"),
        ("sqrt(-1 - x^2 - y^2)", "is not finite anywhere on the domain"),
        ("1 / (x - x)", "is not finite anywhere on the domain"),
    ],
)
def test_constant_or_undefined_everywhere(text, needle):
    with pytest.raises(ValueError, match=needle) as err:
        compile_expression(text)
    _allowed_message(err)


def test_a_domain_where_it_is_defined_rescues_it():
    with pytest.raises(ValueError, match="not finite anywhere"):
        compile_expression("log(x - 6)")
    s = compile_expression("log(x - 6) + y^2", domain=((7, 10), (-1, 1)))
    assert s.start[0] > 6


@pytest.mark.parametrize("text", ["x", "+y", "x + 0"])
def test_results_do_not_alias_the_points(text):
    """The simulator updates its points in place after reading the loss: no views allowed."""
    s = compile_expression(text)
    xy = torch.tensor([[1.0, 2.0]])
    f, g = s.loss_and_gradient(xy)
    loss = s.loss(xy)
    before = (f.clone(), g.clone(), loss.clone())
    xy.add_(10.0)
    assert torch.equal(f, before[0]) and torch.equal(g, before[1]) and torch.equal(loss, before[2])
