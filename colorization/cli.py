"""What the command-line tools share: the --device flag and its error message."""

import needle as ndl

DEVICES = ("cpu", "cuda", "cpu_numpy")


def add_device_argument(parser):
    parser.add_argument("--device", choices=DEVICES, default="cpu",
                        help="cpu: the C++ backend (default); cuda: the GPU backend; "
                             "cpu_numpy: the numpy reference (slow)")


def get_device(name):
    """The needle device called name; exits with needle's how-to-get-it message if unavailable."""
    try:
        return getattr(ndl, name)()
    except ndl.DeviceUnavailable as err:
        raise SystemExit(f"error: {err}") from err
