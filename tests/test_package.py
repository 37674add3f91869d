import subprocess
import sys


def test_import_is_cheap():
    """`import optiviz` must not pull in torch, widgets or Jupyter."""
    code = "import sys, optiviz; print(sorted(m for m in ('torch','ipywidgets','bqplot','IPython') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_unknown_attribute():
    import optiviz
    import pytest

    with pytest.raises(AttributeError):
        optiviz.not_a_thing


def test_every_public_name_resolves():
    import optiviz

    for name in optiviz.__all__:
        assert getattr(optiviz, name) is not None, name
