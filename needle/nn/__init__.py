"""needle.nn: Module, Parameter, layers and losses."""

from .layers import (BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity, LayerNorm1d,
                     Linear, ReLU, Residual, Sequential, Sigmoid, Tanh, Upsample)
from .losses import L1Loss, MSELoss, SoftmaxLoss
from .module import Module, Parameter
