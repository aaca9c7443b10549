"""Optimizers with torch.optim's update rules: SGD (momentum, weight decay) and Adam.

A step computes on the NDArrays under the parameters and their gradients and
swaps the result in as the parameter's data: no Tensor is created, so no
graph is recorded and nothing of the step outlives it (the no_grad guarantee,
by construction).  The per-parameter state is NDArrays and ints; state_dict()
returns it as numpy arrays and numbers (savable with needle.save), and
load_state_dict() restores it so that training resumes exactly.
"""

from .backend_ndarray import NDArray


class Optimizer:
    """Updates a list of parameters from their .grad; parameters without a grad are skipped."""

    hyperparameters = ()  # attribute names saved in state_dict, set by subclasses
    state_names = ()  # per-parameter state arrays, set by subclasses

    def __init__(self, params):
        self.params = []
        for p in params:
            if all(p is not q for q in self.params):
                self.params.append(p)
        self.state = {}  # parameter index -> {"step": int, name: NDArray ...}

    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad.cached_data
            if grad.shape != p.shape:
                raise ValueError(f"parameter {i} has shape {p.shape} but its grad {grad.shape}")
            p.cached_data = self._update(self.state.setdefault(i, {"step": 0}), p.cached_data,
                                         grad)

    def _update(self, state, param, grad):
        """The parameter's new data; may update state in place."""
        raise NotImplementedError

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def state_dict(self):
        return {
            "optimizer": type(self).__name__,
            "hyperparameters": {name: getattr(self, name) for name in self.hyperparameters},
            "state": {str(i): {k: v.numpy() if isinstance(v, NDArray) else v for k, v in s.items()}
                      for i, s in self.state.items()},
        }

    def load_state_dict(self, state_dict):
        name = type(self).__name__
        if state_dict.get("optimizer") != name:
            raise ValueError(f"state_dict is for optimizer {state_dict.get('optimizer')!r}, "
                             f"not {name}")
        hyper = state_dict["hyperparameters"]
        if set(hyper) != set(self.hyperparameters):
            raise ValueError(f"{name} hyperparameters are {sorted(self.hyperparameters)}, "
                             f"the state_dict has {sorted(hyper)}")
        state = {}
        for key, entry in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(self.params):
                raise ValueError(f"state for parameter {i}, but the optimizer has "
                                 f"{len(self.params)} parameters")
            # Every array is optional (SGD without momentum keeps none); unknown keys are not.
            if "step" not in entry or not set(entry) <= {"step", *self.state_names}:
                raise ValueError(f"state of parameter {i} has keys {sorted(entry)}, expected "
                                 f"'step' and some of {list(self.state_names)}")
            p = self.params[i]
            state[i] = {"step": int(entry["step"])}
            for k in set(entry) - {"step"}:
                if tuple(entry[k].shape) != p.shape:
                    raise ValueError(f"state {k!r} of parameter {i} has shape "
                                     f"{tuple(entry[k].shape)}, the parameter {p.shape}")
                state[i][k] = NDArray(entry[k], device=p.device)
        for k, v in hyper.items():
            setattr(self, k, v)
        self.state = state


class SGD(Optimizer):
    """p -= lr * buf, buf = momentum * buf + (grad + weight_decay * p) (torch.optim.SGD)."""

    hyperparameters = ("lr", "momentum", "weight_decay")
    state_names = ("momentum_buffer",)

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0):
        super().__init__(params)
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay

    def _update(self, state, param, grad):
        if self.weight_decay:
            grad = grad + param * self.weight_decay
        if self.momentum:
            # torch starts the buffer at the first gradient, not at zero.
            buf = state.get("momentum_buffer")
            grad = grad if buf is None else buf * self.momentum + grad
            state["momentum_buffer"] = grad
        state["step"] += 1
        return param - grad * self.lr


class Adam(Optimizer):
    """torch.optim.Adam: L2 weight decay added to the grad, bias-corrected moments."""

    hyperparameters = ("lr", "beta1", "beta2", "eps", "weight_decay")
    state_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weight_decay = weight_decay

    def _update(self, state, param, grad):
        if self.weight_decay:
            grad = grad + param * self.weight_decay
        if state["step"] == 0:
            state["exp_avg"] = param.device.zeros(param.shape)
            state["exp_avg_sq"] = param.device.zeros(param.shape)
        state["step"] += 1
        m = state["exp_avg"] = state["exp_avg"] * self.beta1 + grad * (1 - self.beta1)
        v = state["exp_avg_sq"] = state["exp_avg_sq"] * self.beta2 + grad * grad * (1 - self.beta2)
        # The same order of operations as torch's single-tensor Adam.
        bias1 = 1 - self.beta1 ** state["step"]
        bias2 = 1 - self.beta2 ** state["step"]
        denom = v.sqrt() / (bias2 ** 0.5) + self.eps
        return param - (m / denom) * (self.lr / bias1)
