"""Fixed feature networks for the perceptual loss.

No pretrained weights can be downloaded here, so two kinds serve:

* RandomFeatureNet: a seeded random-weight conv net, the fallback.  Random
  convolutional features work as a perceptual loss (Liu et al., CVPR 2021):
  they still respond to local colour structure, which is what the loss needs.
* CifarClassifier: a small ResNet9-like CIFAR-10 classifier trained in needle
  (``python -m colorization.classifier``); its early block gives the features,
  and evaluate reports its accuracy on true, grey and colorized images (the
  "semantic interpretability" measure of Zhang et al. 2016).

Both take sRGB in [0, 1], NCHW, and have ``features(x)``; freeze() makes
their parameters constants so that only the colorizer learns.
"""

import numpy as np

import needle as ndl
import needle.nn as nn

from .model import ConvBlock

# CIFAR-10 training-split channel statistics: the classifier normalises its
# input with them, so callers hand it plain sRGB.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
CLASSIFIER_KIND = "colorization.features.CifarClassifier"


def _normalise(x, mean, std):
    shape = (1, 3, 1, 1)
    m = ndl.Tensor(np.asarray(mean, dtype=np.float32).reshape(shape), device=x.device)
    s = ndl.Tensor(np.asarray(std, dtype=np.float32).reshape(shape), device=x.device)
    return (x - m.broadcast_to(x.shape)) / s.broadcast_to(x.shape)


def freeze(net):
    """Eval mode and no parameter gradients: the loss differentiates through the
    net with respect to its input only."""
    net.eval()
    for p in net.parameters():
        p.requires_grad = False
    return net


class RandomFeatureNet(nn.Module):
    """Three 3x3 conv + ReLU layers (3->32, 32->64 stride 2, 64->64), He-normal
    weights and zero biases drawn from np.random.default_rng(seed), so that the
    same seed gives the same features on every backend and in the PyTorch
    re-statement (benchmarks/torch_models.py)."""

    LAYERS = ((3, 32, 1), (32, 64, 2), (64, 64, 1))

    def __init__(self, seed=0, device=None):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = [
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, device=device)
            for cin, cout, stride in self.LAYERS]
        self.relu = nn.ReLU()
        self.load_state_dict(random_feature_weights(seed))

    def features(self, x):
        # Centre the input: with zero biases an all-positive input would put
        # every first-layer unit on the same side of its ReLU.
        x = x - 0.5
        for conv in (self.conv1, self.conv2, self.conv3):
            x = self.relu(conv(x))
        return x

    forward = features


def random_feature_weights(seed):
    """The state dict of RandomFeatureNet(seed): He-normal weights, zero biases."""
    rng = np.random.default_rng(seed)
    state = {}
    for i, (cin, cout, _) in enumerate(RandomFeatureNet.LAYERS, start=1):
        state[f"conv{i}.weight"] = (rng.standard_normal((cout, cin, 3, 3))
                                    * np.sqrt(2.0 / (cin * 9))).astype(np.float32)
        state[f"conv{i}.bias"] = np.zeros(cout, dtype=np.float32)
    return state


class CifarClassifier(nn.Module):
    """ResNet9-like CIFAR-10 classifier: eight 3x3 ConvBlocks with BatchNorm
    (stride-2 convs where ResNet9 max-pools, since needle has no pooling op),
    two residual pairs, global average pooling, one linear layer.

    ``features`` stops after the first residual stage (widths[1] channels at
    half resolution): early enough to keep colour and texture, late enough to
    carry what makes a class recognisable.
    """

    def __init__(self, widths=(16, 32, 64, 128), num_classes=10, device=None):
        super().__init__()
        self.config = {"widths": [int(w) for w in widths], "num_classes": int(num_classes)}
        w0, w1, w2, w3 = widths
        bn = dict(batch_norm=True, device=device)
        self.prep = ConvBlock(3, w0, **bn)
        self.layer1 = ConvBlock(w0, w1, stride=2, **bn)
        self.res1 = nn.Residual(nn.Sequential(ConvBlock(w1, w1, **bn), ConvBlock(w1, w1, **bn)))
        self.layer2 = ConvBlock(w1, w2, stride=2, **bn)
        self.layer3 = ConvBlock(w2, w3, stride=2, **bn)
        self.res3 = nn.Residual(nn.Sequential(ConvBlock(w3, w3, **bn), ConvBlock(w3, w3, **bn)))
        self.head = nn.Linear(w3, num_classes, device=device)

    def features(self, x):
        return self.res1(self.layer1(self.prep(_normalise(x, CIFAR_MEAN, CIFAR_STD))))

    def forward(self, x):
        f = self.res3(self.layer3(self.layer2(self.features(x))))
        return self.head(f.mean(axes=(2, 3)))


def load_classifier(path, device=None):
    """A trained CifarClassifier from its checkpoint (needle safe format), frozen."""
    checkpoint = ndl.load(path)
    if not isinstance(checkpoint, dict) or checkpoint.get("kind") != CLASSIFIER_KIND:
        raise ValueError(f"{path} is not a CIFAR-10 classifier checkpoint "
                         f"(train one with `python -m colorization.classifier`)")
    net = CifarClassifier(device=device, **checkpoint["config"])
    net.load_state_dict(checkpoint["model"])
    return freeze(net)


def feature_net(classifier_path=None, device=None):
    """The perceptual feature network: the trained classifier when a checkpoint is
    given, the seeded random net otherwise; frozen either way."""
    if classifier_path:
        return load_classifier(classifier_path, device)
    return freeze(RandomFeatureNet(device=device))


def predict_labels(net, rgb, device=None, batch_size=256):
    """Class indices the classifier gives sRGB images (N, 3, H, W) in [0, 1]."""
    labels = []
    with ndl.no_grad():
        for start in range(0, len(rgb), batch_size):
            x = ndl.Tensor(np.ascontiguousarray(rgb[start:start + batch_size], dtype=np.float32),
                           device=device)
            labels.append(net(x).numpy().argmax(axis=1))
    return np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
