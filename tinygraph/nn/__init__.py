"""Layers built from primitive ops, so their graphs show every path: `tg.nn`.

    ln = tg.nn.LayerNorm(4)
    y = ln(x)                       # a Node; its nodes are in scope "layernorm"
    tg.nn.functional.layer_norm(x)  # the same without parameters
"""

from . import functional
from .layers import MLP, BatchNorm1d, LayerNorm, Linear, Module, RMSNorm
from .optim import SGD

__all__ = ["functional", "Module", "LayerNorm", "BatchNorm1d", "RMSNorm", "Linear", "MLP", "SGD"]
