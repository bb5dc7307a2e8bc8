"""Looking never changes gradients (issue 13, point 8).

A random program (tests/test_random_graphs.py's generator: a DAG of every op over
a few leaves, values reused so that triangles occur) is built twice. The first time,
at random points between ops and between backward steps, the test reads every way a
learner can: `.data`, `.grad`, `repr`, `tg.explain`, `tg.to_dot`, `tg.paths`,
`.contributions`, a deep copy (and a backward pass on the copy) and a pickle round
trip of a leaf. The second time nothing is looked at. Values and gradients of both must
be identical, and match central differences and PyTorch.
"""

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_random_graphs import build, central_leaf_grads, graphs, torch_replay

import tinygraph as tg

LOOKING = settings(deadline=None, max_examples=100, derandomize=True)
LOOKS = ["data", "grad", "repr", "explain", "to_dot", "paths", "contributions", "deepcopy", "pickle"]
PROGRAMS = {"tensors": graphs(), "scalars": graphs(leaf_shapes=[()])}


def ancestors(node):
    """`node` and every node it depends on, through `.parents` (no recursion)."""
    seen, stack = {id(node): node}, [node]
    while stack:
        for p in stack.pop().parents:
            if id(p) not in seen:
                seen[id(p)] = p
                stack.append(p)
    return list(seen.values())


def look(what, node, draw):
    """Read `node` the way a learner would; nothing here may change any gradient."""
    if what == "data":
        node.data  # noqa: B018
    elif what == "grad":
        node.grad  # noqa: B018
    elif what == "repr":
        repr(node)
    elif what == "explain":
        str(tg.explain(node))
    elif what == "to_dot":
        tg.to_dot(node)
    elif what == "paths":
        below = ancestors(node)
        for path in tg.paths(node, below[draw(st.integers(0, len(below) - 1))]):
            str(path)
    elif what == "contributions":
        for consumer, g in node.contributions:
            repr(consumer), g.sum()
    elif what == "deepcopy":
        twin = copy.deepcopy(node)
        twin.backward(np.ones(twin.shape))
    elif what == "pickle":
        leaves = [n for n in ancestors(node) if not n.parents]
        twin = pickle.loads(pickle.dumps(leaves[draw(st.integers(0, len(leaves) - 1))]))
        twin.grad  # noqa: B018


def maybe_look(pool, draw):
    """At this point, look at a few of the values made so far (or at none)."""
    for _ in range(draw(st.integers(0, 3))):
        look(draw(st.sampled_from(LOOKS)), pool[draw(st.integers(0, len(pool) - 1))], draw)


def build_looking(graph, draw):
    """Build the program and run its backward pass one step at a time, looking in between."""
    with np.errstate(all="ignore"):
        leaves, values = build(graph, look=lambda pool: maybe_look(pool, draw))
        for _ in tg.backward_steps(values[-1]):
            maybe_look(values, draw)
        maybe_look(values, draw)
    return leaves, values


@LOOKING
@pytest.mark.parametrize("kind", list(PROGRAMS))
@given(data=st.data())
def test_looking_between_ops_and_steps_changes_no_gradient(kind, data):
    graph = data.draw(PROGRAMS[kind], label="graph")
    leaves, values = build_looking(graph, data.draw)

    _, plain = build(graph)
    plain[-1].backward()
    for i, (seen, unseen) in enumerate(zip(values, plain)):
        np.testing.assert_array_equal(seen.data, unseen.data, err_msg=f"value {i}, program {graph['program']}")
        np.testing.assert_array_equal(seen.grad, unseen.grad, err_msg=f"grad {i}, program {graph['program']}")
    for i, (leaf, expected) in enumerate(zip(leaves, central_leaf_grads(graph))):
        np.testing.assert_allclose(leaf.grad, expected, rtol=1e-5, atol=1e-6,
                                   err_msg=f"leaf x{i} vs central differences, program {graph['program']}")


@LOOKING
@given(data=st.data())
def test_looking_changes_no_gradient_vs_torch(data):
    torch = pytest.importorskip("torch")
    graph = data.draw(graphs(), label="graph")
    leaves, _ = build_looking(graph, data.draw)
    _, t_grads = torch_replay(torch, graph)
    for i, (leaf, t_grad) in enumerate(zip(leaves, t_grads)):
        np.testing.assert_allclose(leaf.grad, t_grad, rtol=1e-10, atol=1e-12,
                                   err_msg=f"leaf x{i} vs torch, program {graph['program']}")
