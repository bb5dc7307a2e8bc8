"""The engine is read by students: the README quotes the real loop, and the vjps are the textbook rules."""

import inspect
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tinygraph as tg
from tinygraph import core, ops

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_quotes_the_backward_loop_as_it_is_in_core():
    section = README.read_text(encoding="utf-8").split("## How it is built", 1)[1]
    quoted = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    source = textwrap.dedent(inspect.getsource(core.propagate))
    body = "\n".join(line.strip() for line in source.splitlines())
    assert quoted.startswith("def propagate(")
    for line in quoted.strip().splitlines()[1:]:  # the def line: type hints left out
        code = line.strip()
        assert code in body, f"README's loop has a line that core.propagate does not: {code!r}"


def test_the_loop_is_short_and_has_no_type_dispatch():
    source = inspect.getsource(core.propagate)
    loop = source[source.index("    try:"):source.index("    finally:")]
    assert len(loop.strip().splitlines()) <= 25
    assert "__class__" not in inspect.getsource(core) and "isinstance" not in loop


@pytest.mark.parametrize("shapes", [((3,), (3,)), ((2, 3), (3,)), ((), (4,))])
def test_arithmetic_vjps_are_the_textbook_rules(shapes):
    rng = np.random.default_rng(0)
    a, b = (rng.normal(size=s) + 3.0 for s in shapes)
    g = rng.normal(size=np.broadcast_shapes(*shapes))
    rules = {
        ops.add: (g, g),
        ops.sub: (g, -g),
        ops.mul: (g * b, g * a),
        ops.div: (g / b, -g * a / b ** 2),
    }
    for op, expected in rules.items():
        _, vjp = op.forward(a, b)
        for got, want in zip(vjp(g), expected):
            np.testing.assert_array_equal(got, want)


def test_each_op_owns_its_settings():
    assert tg.add.formula == "{0} + {1}" and tg.add.broadcast and tg.add.name == "add"
    mine = tg.op(lambda a, b: (a + b, lambda g: (g, g)), name="add", formula="plus({0}, {1})")
    assert mine is not tg.add and tg.add.formula == "{0} + {1}" and not mine.broadcast
