"""Arrays and the backends that run their kernels."""

from .ndarray import (BackendDevice, DeviceUnavailable, NDArray, all_devices, array, cpu,
                      cpu_numpy, cuda, default_device, empty, full)
