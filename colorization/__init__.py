"""Image colorization on needle: a U-Net predicts the Lab a/b channels from L.

Commands: ``python -m colorization.train``, ``python -m colorization.evaluate``,
``python -m colorization.colorize``, ``python -m colorization.classifier``.
Scales everywhere: the network reads L/100 and predicts ab/128 (colorization.lab).
"""
