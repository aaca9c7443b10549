"""Colorize image files: ``python -m colorization.colorize IMAGE_OR_DIR... --checkpoint C --out DIR``.

Any size and any format Pillow reads.  The image's own L channel is kept at
full resolution; the network predicts ab on the image padded (edge pixels
repeated) to a multiple of 8, cropped back.  Images larger than --max-side
get their ab predicted on a downscaled copy and upsampled: chroma carries
little fine detail, and a full-resolution pass over a photo would need
gigabytes of activations.  One PNG per input.  A file that cannot be read is
reported and skipped; the others are still processed, and the exit status is
1 if any failed.
"""

import argparse
import os
import sys

import numpy as np
from PIL import Image, UnidentifiedImageError

from .checkpoint import load_model
from .cli import add_device_argument, get_device
from .dataset import to_chw_float
from .lab import rgb_to_lab_array, split_lab
from .metrics import quantize
from .model import SIZE_MULTIPLE
from .predict import predict_ab, to_rgb


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m colorization.colorize", description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files, or folders searched recursively")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="folder for the colorized PNGs (<name>_colorized.png)")
    p.add_argument("--max-side", type=int, default=512,
                   help="predict ab on a copy scaled down to at most this many pixels a side "
                        "(0: always at full resolution) (default: %(default)s)")
    add_device_argument(p)
    return p.parse_args(argv)


def input_files(inputs):
    """Files named directly (tried whatever their extension) and image files under folders."""
    known = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    files = []
    for path in inputs:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs.sort()
                files += [os.path.join(root, n) for n in sorted(names) if os.path.splitext(n)[1].lower() in known]
        else:
            files.append(path)
    return files


def colorize(model, rgb_u8, device=None, max_side=512):
    """Colorized uint8 (H, W, 3) of an image (H, W, 3): its own L, the model's ab."""
    h, w, _ = rgb_u8.shape
    L = network_L(rgb_u8, device)
    scale = max_side / max(h, w) if max_side else 1.0
    if scale < 1.0:
        small = Image.fromarray(rgb_u8).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                               Image.Resampling.BICUBIC)
        ab = resize_planes(predict_padded(model, network_L(np.asarray(small), device), device), (h, w))
    else:
        ab = predict_padded(model, L, device)
    return quantize(to_rgb(L, ab, device))[0].transpose(1, 2, 0)


def network_L(rgb_u8, device):
    """L/100 (1, 1, H, W) of one uint8 image (H, W, 3)."""
    return split_lab(rgb_to_lab_array(to_chw_float(rgb_u8[None]), device))[0]


def predict_padded(model, L, device):
    """ab/128 for L/100 of any size: edge-padded to a multiple of 8, cropped back."""
    h, w = L.shape[2:]
    pad = ((0, 0), (0, 0), (0, -h % SIZE_MULTIPLE), (0, -w % SIZE_MULTIPLE))
    return predict_ab(model, np.pad(L, pad, mode="edge"), device)[:, :, :h, :w]


def resize_planes(x, size):
    """Bilinear resize of each (H, W) plane of x (1, C, H, W) to size (h, w)."""
    h, w = size
    planes = [Image.fromarray(np.ascontiguousarray(p, dtype=np.float32)) for p in x[0]]
    return np.stack([np.asarray(p.resize((w, h), Image.Resampling.BILINEAR)) for p in planes])[None]


def read_rgb(path):
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def output_path(out, path, taken):
    """<out>/<name>_colorized.png, numbered when two inputs share a name."""
    stem = os.path.splitext(os.path.basename(path))[0]
    candidate, n = os.path.join(out, f"{stem}_colorized.png"), 1
    while candidate in taken:
        n += 1
        candidate = os.path.join(out, f"{stem}_colorized_{n}.png")
    taken.add(candidate)
    return candidate


def main(argv=None):
    args = parse_args(argv)
    device = get_device(args.device)
    try:
        model = load_model(args.checkpoint, device)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: cannot load --checkpoint: {err}") from err
    os.makedirs(args.out, exist_ok=True)
    files, failed, taken = input_files(args.inputs), 0, set()
    if not files:
        raise SystemExit("error: no image files found in the inputs")
    for path in files:
        try:
            rgb = read_rgb(path)
        except (OSError, UnidentifiedImageError, ValueError) as err:
            print(f"error: cannot read {path}: {err}", file=sys.stderr)
            failed += 1
            continue
        target = output_path(args.out, path, taken)
        Image.fromarray(colorize(model, rgb, device, args.max_side)).save(target)
        print(f"{path} -> {target}")
    if failed:
        print(f"{failed} of {len(files)} files could not be read", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
