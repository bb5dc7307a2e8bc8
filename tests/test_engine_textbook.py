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


FASTER = [op for op in vars(ops).values() if isinstance(op, tg.Op) and op.faster is not None]
SHAPE_PAIRS = [((), ()), ((3,), (3,)), ((2, 3), (3,)), ((3,), (2, 3)), ((4, 1), (1, 5)), ((2, 3, 4), (3, 1)),
               ((), (2, 2))]


def test_the_faster_variants_are_labelled_and_exist_for_the_hot_ops():
    assert {op.name for op in FASTER} == {"sub", "mul", "div", "pow"}
    for op in FASTER:
        assert op.faster is not op.forward


@pytest.mark.parametrize("op", FASTER, ids=lambda op: op.name)
@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
def test_each_faster_variant_gives_the_rules_results(op, shapes):
    """Same inputs through the textbook rule and the faster variant: same value, same gradients."""
    rng = np.random.default_rng(7)
    values = [rng.normal(size=s) + 2.5 for s in shapes]  # away from 0, so b ** 2 neither under- nor overflows
    settings = {}
    if op.name == "pow":
        values, settings = values[:1], {"p": 2}
    for p in ([0, 1, 2, 3, 0.5, -1, -2.5] if op.name == "pow" else [None]):
        if p is not None:
            settings = {"p": p}
        y_rule, vjp_rule = op.forward(*values, **settings)
        y_fast, vjp_fast = op.faster(*values, **settings)
        np.testing.assert_array_equal(y_fast, y_rule)
        g = rng.normal(size=np.shape(y_rule))
        for v, rule, fast in zip(values, vjp_rule(g), vjp_fast(g)):
            rule, fast = (core.sum_to_shape(np.asarray(d), np.shape(v)) for d in (rule, fast))  # as the engine does
            np.testing.assert_allclose(fast, rule, rtol=1e-13, atol=1e-15, err_msg=f"{op.name} {shapes} p={p}")
