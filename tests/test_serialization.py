"""needle.save / needle.load: round trips, atomic writes, and files that must be refused."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import needle as ndl
from needle import serialization

REF = ndl.cpu_numpy()


def sample():
    rng = np.random.default_rng(0)
    return {
        "weights": {"conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
                    "ids": np.arange(5, dtype=np.int64), "mask": np.array([True, False]),
                    "empty": np.zeros((0, 3), np.float32)},
        "numpy_scalar": np.float32(2.5),  # comes back as a Python number
        "tensor": ndl.Tensor(rng.standard_normal((2, 3)), device=REF),
        "ndarray": ndl.NDArray(np.ones((2, 2)), device=REF),
        "numbers": [1, -2.5, True, None, "text", float("inf")],
        "tuple": (1, [2, {"deep": np.array([[1, 2]], np.uint8)}]),
        7: "int keys survive",
    }


def test_round_trip(tmp_path):
    obj = sample()
    ndl.save(obj, tmp_path / "state.npz")
    back = ndl.load(tmp_path / "state.npz")
    assert set(back) == set(obj) and 7 in back
    for k, v in obj["weights"].items():
        np.testing.assert_array_equal(back["weights"][k], v)
        assert np.asarray(back["weights"][k]).dtype == np.asarray(v).dtype
    assert isinstance(back["tensor"], np.ndarray) and back["tensor"].dtype == np.float32
    np.testing.assert_array_equal(back["tensor"], obj["tensor"].numpy())
    np.testing.assert_array_equal(back["ndarray"], np.ones((2, 2)))
    assert back["numbers"] == obj["numbers"]
    assert [type(v) for v in back["numbers"]] == [int, float, bool, type(None), str, float]
    assert back["numpy_scalar"] == 2.5 and type(back["numpy_scalar"]) is float
    assert isinstance(back["tuple"], tuple)
    np.testing.assert_array_equal(back["tuple"][1][1]["deep"], [[1, 2]])


def test_model_and_optimizer_state(tmp_path):
    model = ndl.nn.Sequential(ndl.nn.Linear(3, 2, device=REF), ndl.nn.BatchNorm1d(2, device=REF))
    opt = ndl.optim.Adam(model.parameters())
    for p in model.parameters():
        p.grad = ndl.Tensor(np.ones(p.shape), device=REF)
    opt.step()
    ndl.save({"model": model.state_dict(), "opt": opt.state_dict()}, str(tmp_path / "ckpt"))
    back = ndl.load(str(tmp_path / "ckpt"))
    model.load_state_dict(back["model"])
    opt.load_state_dict(back["opt"])
    assert back["opt"]["state"]["0"]["step"] == 1


def test_unsupported_objects_are_refused(tmp_path):
    for bad in ({"f": lambda: 0}, {(1, 2): 3}, {"a": np.array([object()])}, {True: 1}):
        with pytest.raises(TypeError, match="needle.save"):
            ndl.save(bad, tmp_path / "x.npz")
    assert not list(tmp_path.iterdir())


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "state.npz"
    ndl.save({"v": np.ones(3)}, path)
    real = np.lib.format.write_array
    calls = []

    def crash_on_second_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", crash_on_second_array)
    with pytest.raises(OSError, match="disk full"):
        ndl.save({"v": np.zeros(3), "w": np.zeros(2)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(ndl.load(path)["v"], np.ones(3))  # the old file is intact
    assert os.listdir(tmp_path) == ["state.npz"]  # and no temporary file is left


# ------------------------------------------------------------ files that must be refused


class Payload:
    """Unpickling this would create the marker directory."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_malicious_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"weights": Payload(marker)}))
    with pytest.raises(ValueError, match="not a needle file.*pickle"):
        ndl.load(path)
    assert not marker.exists()


def test_foreign_files(tmp_path):
    (tmp_path / "random").write_bytes(np.random.default_rng(0).bytes(1000))
    (tmp_path / "empty").write_bytes(b"")
    np.savez(tmp_path / "plain.npz", w=np.ones(3))
    for name in ("random", "empty"):
        with pytest.raises(ValueError, match="not a needle file"):
            ndl.load(tmp_path / name)
    with pytest.raises(ValueError, match="no needle metadata"):
        ndl.load(tmp_path / "plain.npz")


def test_truncated_file(tmp_path):
    path = tmp_path / "state.npz"
    ndl.save({"w": np.arange(1000, dtype=np.float32)}, path)
    data = path.read_bytes()
    for size in (len(data) // 2, len(data) - 10, 10):
        path.write_bytes(data[:size])
        with pytest.raises(ValueError, match="truncated or corrupted|not a valid needle file"):
            ndl.load(path)


def rewrite(path, edit):
    """Rebuild the zip with edit(name, bytes) -> bytes applied: valid CRCs, changed content."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, edit(name, data))


def test_pickled_array_inside_an_npz_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    ndl.save({"w": np.ones(2)}, path)

    def object_array(name, data):  # an object array is a pickle inside the .npy
        if name != "a0.npy":
            return data
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.array([Payload(marker)], dtype=object))
        return buf.getvalue()

    rewrite(path, object_array)
    with pytest.raises(ValueError, match="not a valid needle file"):
        ndl.load(path)
    assert not marker.exists()


def test_tampered_files(tmp_path):
    path = tmp_path / "state.npz"
    obj = {"w": np.arange(100, dtype=np.float32), "lr": 0.1}

    ndl.save(obj, path)
    raw = bytearray(path.read_bytes())
    raw[-200] ^= 0xFF  # a flipped byte in place: the zip CRC or our checksum catches it
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError):
        ndl.load(path)

    def change_weights(name, data):
        return data[:-4] + b"\x00\x00\x80\x3f" if name == "a0.npy" else data

    def change_metadata(name, data):
        if name != "__needle__.npy":
            return data
        header = json.loads(np.load(io.BytesIO(data)).tobytes())
        header["structure"]["dict"][1][1]["value"] = 100.0
        buf = io.BytesIO()
        np.save(buf, np.frombuffer(json.dumps(header).encode(), np.uint8))
        return buf.getvalue()

    for edit in (change_weights, change_metadata):
        ndl.save(obj, path)
        rewrite(path, edit)
        with pytest.raises(ValueError, match="checksum mismatch"):
            ndl.load(path)


def test_wrong_version(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization, "VERSION", 99)
    ndl.save({"a": 1}, tmp_path / "future.npz")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="unsupported format 'needle' version 99"):
        ndl.load(tmp_path / "future.npz")
