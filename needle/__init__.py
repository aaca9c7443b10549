"""needle: a small deep-learning framework with hand-written CPU and CUDA kernels."""

from . import ops
from .autograd import Tensor, TensorTuple, enable_grad, is_grad_enabled, no_grad
from .backend_ndarray import (DeviceUnavailable, NDArray, all_devices, cpu, cpu_numpy, cuda,
                              default_device)
from .ops import *  # noqa: F401,F403  (needle.conv, needle.concat, ... as in the course)
from . import data, init, nn, optim
from .serialization import load, save
