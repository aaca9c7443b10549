"""What a training checkpoint holds, and where it lives.

Every checkpoint is a needle safe-format file (needle.save: arrays and JSON,
checksummed, written atomically; loading runs no code).  The seed named its
checkpoints ``colorization_epoch_{N}.pkl`` and the names are kept, but they
are not pickles.

* ``colorization_epoch_{N}.pkl``: the model after epoch N (weights, config).
* ``colorization_last.pkl``: everything needed to continue exactly: the
  model, the optimizer state, the epoch, the shuffling RNG state, the loss
  history and the training settings that must not change on resume.
"""

import os

import numpy as np

import needle as ndl

from .model import build_model

LAST = "colorization_last.pkl"
KIND = "colorization.ColorizationNet"


def epoch_path(out, epoch):
    return os.path.join(out, f"colorization_epoch_{epoch}.pkl")


def last_path(out):
    return os.path.join(out, LAST)


def model_record(model, epoch):
    """The part every checkpoint shares: enough to rebuild and run the network."""
    return {"kind": KIND, "model": model.state_dict(), "config": dict(model.config), "epoch": epoch}


def save_last(path, model, optimizer, epoch, rng, history, settings):
    ndl.save({**model_record(model, epoch), "optimizer": optimizer.state_dict(),
              "rng": rng_state(rng), "history": history, "settings": settings}, path)


def load_checkpoint(path):
    """A colorization checkpoint as a dict; ValueError naming the file if it is not one."""
    checkpoint = ndl.load(path)
    if not isinstance(checkpoint, dict) or checkpoint.get("kind") != KIND:
        raise ValueError(f"{path} is a needle file but not a colorization checkpoint")
    return checkpoint


def rng_state(rng):
    """A numpy Generator's state with its 128-bit integers as strings (portable JSON)."""
    state = rng.bit_generator.state
    return {"bit_generator": state["bit_generator"],
            "state": {k: str(v) for k, v in state["state"].items()},
            "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}


def restore_rng(saved):
    """The Generator rng_state described, continuing where it stopped."""
    rng = np.random.Generator(getattr(np.random, saved["bit_generator"])())
    rng.bit_generator.state = {"bit_generator": saved["bit_generator"],
                               "state": {k: int(v) for k, v in saved["state"].items()},
                               "has_uint32": saved["has_uint32"], "uinteger": saved["uinteger"]}
    return rng


def load_model(path, device=None):
    """The trained ColorizationNet of a checkpoint file, in eval mode."""
    return build_model(load_checkpoint(path), device)
