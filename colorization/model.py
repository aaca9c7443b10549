"""The colorization U-Net: L/100 (N, 1, H, W) in, ab/128 (N, 2, H, W) out.

The seed's architecture and attribute names (enc1..enc4, bottleneck,
dec1..dec3, final), with real channel concatenation for the skips, so a
decoder block sees its own features and the encoder's side by side.
"""

import needle as ndl
import needle.nn as nn

# Three stride-2 stages: the input must halve cleanly three times.
SIZE_MULTIPLE = 8


class ConvBlock(nn.Module):
    """3x3 convolution (padding 1, so stride 1 keeps the size and stride 2 halves it),
    optional BatchNorm, ReLU."""

    def __init__(self, in_channels, out_channels, stride=1, batch_norm=False, device=None):
        super().__init__()
        # A BatchNorm right after the conv makes the conv bias redundant.
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                              bias=not batch_norm, device=device)
        self.norm = nn.BatchNorm2d(out_channels, device=device) if batch_norm else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.norm(self.conv(x)))


class UpConvBlock(nn.Module):
    """2x upsampling (nearest, or bilinear where the upsample op offers it), then a ConvBlock."""

    def __init__(self, in_channels, out_channels, batch_norm=False, upsample_mode="nearest",
                 device=None):
        super().__init__()
        self.up = nn.Upsample(scale=2, mode=upsample_mode)
        self.block = ConvBlock(in_channels, out_channels, batch_norm=batch_norm, device=device)

    def forward(self, x):
        return self.block(self.up(x))


class ColorizationNet(nn.Module):
    """Encoder 1->64->128->256->512 (stride 2 from the second conv on), bottleneck
    512->512, decoder with skips concatenated along channels, final 3x3 conv
    128->2 without activation (ab/128 is signed).

    ``config`` holds the constructor arguments so a checkpoint can rebuild the
    same network.
    """

    def __init__(self, batch_norm=False, upsample_mode="nearest", device=None):
        super().__init__()
        self.config = {"batch_norm": bool(batch_norm), "upsample_mode": upsample_mode}
        bn = dict(batch_norm=batch_norm, device=device)
        self.enc1 = ConvBlock(1, 64, **bn)
        self.enc2 = ConvBlock(64, 128, stride=2, **bn)
        self.enc3 = ConvBlock(128, 256, stride=2, **bn)
        self.enc4 = ConvBlock(256, 512, stride=2, **bn)
        self.bottleneck = ConvBlock(512, 512, **bn)
        self.dec1 = UpConvBlock(512, 256, upsample_mode=upsample_mode, **bn)
        self.dec2 = UpConvBlock(256 + 256, 128, upsample_mode=upsample_mode, **bn)
        self.dec3 = UpConvBlock(128 + 128, 64, upsample_mode=upsample_mode, **bn)
        self.final = nn.Conv2d(64 + 64, 2, 3, padding=1, device=device)

    def forward(self, x):
        check_input(x)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        b = self.bottleneck(self.enc4(e3))
        d1 = ndl.concat([self.dec1(b), e3], axis=1)
        d2 = ndl.concat([self.dec2(d1), e2], axis=1)
        d3 = ndl.concat([self.dec3(d2), e1], axis=1)
        return self.final(d3)


def check_input(x):
    if len(x.shape) != 4 or x.shape[1] != 1:
        raise ValueError(f"ColorizationNet takes L/100 as (N, 1, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[2:]
    if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE or h == 0 or w == 0:
        raise ValueError(f"ColorizationNet needs H and W divisible by {SIZE_MULTIPLE} "
                         f"(three stride-2 stages), got {h}x{w}; pad the image first")


def build_model(checkpoint, device=None):
    """The network a checkpoint dict (colorization.checkpoint) describes, in eval mode."""
    model = ColorizationNet(device=device, **checkpoint["config"])
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return model
