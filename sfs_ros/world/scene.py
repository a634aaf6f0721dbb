# SPDX-License-Identifier: AGPL-3.0-or-later
"""Procedural scenes of the tiny world, deterministic from ``(seed, index)``.

A scene is a floor (tiles or concrete) below a horizon, a wall band (bricks, panels or plaster)
with a roofline, sky (gradient and clouds) above it, and 2-8 objects standing on the floor (kites
and stars may float) drawn far to near, so nearer objects occlude farther ones and get larger.
Every class has its own shape family (circle, 3-D box, striped triangle, ribbed cylinder, ring,
bottle, canopy on a trunk, duck, five-pointed star, diamond) and colour, with in-class variation
of size, proportions, hue and shading. Photometric effects (a lighting gradient, gain, colour
cast, Gaussian blur, sensor noise) change the pixels only: the ground truth is the exact
drawn-before-effects layout.

Ground truth:

* ``semantic``: (H, W) uint8, the index of the class in :data:`~sfs_ros.world.classes.CLASSES`
  at each pixel (every pixel has a class: the scene has no unlabelled pixels);
* ``instances``: (H, W) uint16, 0 = background, ``k`` = the k-th visible object
  (``instance_classes[k - 1]`` is its class index). Objects whose visible part is smaller than
  ``min_instance_pixels`` are dropped from the instance map (their pixels keep their class in
  ``semantic``).

Randomness: the background and the objects draw from two independent streams spawned from
``(seed, index)``, so ``objects=False`` gives exactly the background of the full scene (tests
use this to check the ground truth against the drawn pixels).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from sfs_ros.world.classes import GENERATOR_VERSION, OBJECT_NAMES, class_index

__all__ = ["DEFAULT_SIZE", "TRAIN_SIZE", "Scene", "generate_scene", "generate_sequence"]

#: (height, width) of evaluation and demo scenes: a typical robot camera.
DEFAULT_SIZE = (480, 640)
#: (height, width) of training scenes (same aspect ratio, a quarter of the pixels).
TRAIN_SIZE = (240, 320)
#: Objects per scene (inclusive range).
OBJECTS_PER_SCENE = (2, 8)

_FLOOR, _WALL, _SKY = class_index("floor"), class_index("wall"), class_index("sky")


@dataclass
class Scene:
    """One rendered frame and its ground truth.

    Attributes:
        rgb: (H, W, 3) uint8 RGB pixels.
        semantic: (H, W) uint8 class index per pixel (see the module docstring).
        instances: (H, W) uint16 instance id per pixel, 0 = none.
        instance_classes: (K,) uint8 class index of instance ``k`` at position ``k - 1``.
    """

    rgb: np.ndarray
    semantic: np.ndarray
    instances: np.ndarray
    instance_classes: np.ndarray

    def instance_masks(self) -> list[np.ndarray]:
        """One (H, W) bool mask per instance, in instance-id order."""
        return [self.instances == k for k in range(1, len(self.instance_classes) + 1)]

    def crop(self, x0: int, width: int) -> Scene:
        """The columns ``x0 .. x0 + width`` (instance ids renumbered, empty ones dropped)."""
        inst = self.instances[:, x0 : x0 + width]
        present = np.unique(inst)
        present = present[present > 0]
        lut = np.zeros(len(self.instance_classes) + 1, np.uint16)
        lut[present] = np.arange(1, len(present) + 1, dtype=np.uint16)
        return Scene(
            np.ascontiguousarray(self.rgb[:, x0 : x0 + width]),
            np.ascontiguousarray(self.semantic[:, x0 : x0 + width]),
            lut[inst],
            self.instance_classes[present - 1].copy(),
        )


# ----------------------------------------------------------------------------- helpers
def _streams(seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent background and object random streams of scene ``(seed, index)``."""
    root = np.random.SeedSequence([GENERATOR_VERSION, int(seed), int(index)])
    bg, obj = root.spawn(2)
    return np.random.default_rng(bg), np.random.default_rng(obj)


def _noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth value noise in [0, 1], (h, w) float32, features about ``cell`` pixels wide."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    grid = rng.random((gh, gw), dtype=np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)


def _jitter(rng: np.random.Generator, base: Sequence[float], spread: float) -> np.ndarray:
    """A colour near ``base`` (0..255 RGB), each channel moved by up to ``spread``."""
    return np.clip(np.asarray(base, np.float32) + rng.uniform(-spread, spread, 3), 0, 255)


# ----------------------------------------------------------------------------- background
def _floor(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    if rng.random() < 0.5:  # tiles: a two-tone checker with grout lines
        tile = rng.uniform(0.06, 0.12) * h
        a = _jitter(rng, rng.choice([[150, 150, 150], [185, 175, 160], [120, 120, 125]]), 15)
        b = a * rng.uniform(0.8, 0.92)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        checker = ((yy // tile + xx // tile) % 2).astype(np.float32)[..., None]
        img = a * (1 - checker) + b * checker
        grout = ((yy % tile) < 1.5) | ((xx % tile) < 1.5)
        img[grout] *= 0.7
    else:  # concrete / asphalt: grey noise
        base = _jitter(rng, rng.choice([[110, 110, 112], [155, 150, 145]]), 12)
        img = np.broadcast_to(base, (h, w, 3)).copy()
    img *= (0.85 + 0.3 * _noise(rng, h, w, 6))[..., None]
    return img


def _wall(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = _jitter(rng, rng.choice([[225, 215, 190], [200, 205, 210], [230, 200, 195]]), 12)
    img = np.broadcast_to(base, (h, w, 3)).copy()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    style = rng.integers(3)
    if style == 0:  # bricks: staggered rows with mortar lines
        bh = max(4.0, rng.uniform(0.03, 0.06) * h * 2)
        bw = bh * rng.uniform(2.0, 3.0)
        row = yy // bh
        mortar = ((yy % bh) < 1.5) | (((xx + (row % 2) * bw / 2) % bw) < 1.5)
        img[mortar] *= 0.75
    elif style == 1:  # vertical panels
        pw = rng.uniform(0.08, 0.2) * w
        img[(xx % pw) < 2] *= 0.8
    img *= (0.9 + 0.15 * _noise(rng, h, w, 20))[..., None]
    return img


def _sky(rng: np.random.Generator, h: int, w: int, horizon: float) -> np.ndarray:
    top = _jitter(rng, [70, 130, 220], 20)
    low = _jitter(rng, [170, 205, 240], 15)
    t = np.clip(np.arange(h, dtype=np.float32) / max(horizon, 1.0), 0, 1)[:, None, None]
    img = top * (1 - t) + low * t
    img = np.broadcast_to(img, (h, w, 3)).copy()
    clouds = np.clip((_noise(rng, h, w, 0.15 * h) - 0.55) * 3.0, 0, 1)[..., None]
    return img * (1 - clouds) + 245.0 * clouds


def _background(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Background RGB (float32), its semantic map and the horizon row."""
    horizon = rng.uniform(0.35, 0.6) * h
    semantic = np.full((h, w), _SKY, np.uint8)
    rows = np.arange(h)[:, None]
    roll = rng.random()
    if roll < 0.35:  # indoor: wall up to the top
        roof = np.zeros(w)
    elif roll < 0.55:  # open field: no wall
        roof = np.full(w, horizon)
    else:  # buildings: a stepped roofline
        edges = np.sort(rng.uniform(0, w, rng.integers(1, 6)))
        heights = rng.uniform(0.1 * h, horizon - 0.05 * h, len(edges) + 1)
        roof = heights[np.searchsorted(edges, np.arange(w))]
    semantic[rows >= roof[None, :]] = _WALL
    semantic[np.arange(h) >= horizon] = _FLOOR
    img = _sky(rng, h, w, horizon)
    wall, floor = semantic == _WALL, semantic == _FLOOR
    img[wall] = _wall(rng, h, w)[wall]
    img[floor] = _floor(rng, h, w)[floor]
    return img, semantic, horizon


# ----------------------------------------------------------------------------- objects
# Each painter draws one object into a local canvas of side ``size`` (pixels) and returns
# (mask bool (S, S), colour float32 (S, S, 3)); the object's base sits on the canvas' bottom
# centre. ``s`` is the object's nominal height in pixels.
Painter = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]


def _canvas(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.zeros((size, size), np.uint8), np.zeros((size, size, 3), np.float32), yy, xx


def _fill(mask: np.ndarray, points: np.ndarray) -> None:
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)


def _ball(rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray]:
    mask, col, yy, xx = _canvas(s)
    r = s * rng.uniform(0.3, 0.45)
    cx, cy = s / 2, s - r - 1
    cv2.circle(mask, (round(cx), round(cy)), max(1, round(r)), 1, -1)
    base = _jitter(rng, [215, 35, 40], 25)
    hx, hy = cx - 0.35 * r, cy - 0.35 * r
    d = np.sqrt((xx - hx) ** 2 + (yy - hy) ** 2) / max(r, 1.0)
    shade = np.clip(1.15 - 0.45 * d, 0.45, 1.15)[..., None]
    col[:] = base * shade
    spec = np.clip(1.0 - d / 0.25, 0, 1)[..., None]
    col[:] = col * (1 - spec) + 255.0 * spec
    return mask.astype(bool), col


def _box(rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray]:
    mask, col, yy, xx = _canvas(s)
    fw = s * rng.uniform(0.5, 0.8)
    fh = s * rng.uniform(0.45, 0.7)
    depth = fw * rng.uniform(0.2, 0.35)
    x0 = (s - fw - depth) / 2
    y1 = s - 1
    front = np.array([[x0, y1], [x0 + fw, y1], [x0 + fw, y1 - fh], [x0, y1 - fh]])
    top = np.array(
        [
            [x0, y1 - fh],
            [x0 + fw, y1 - fh],
            [x0 + fw + depth, y1 - fh - depth],
            [x0 + depth, y1 - fh - depth],
        ]
    )
    side = np.array(
        [
            [x0 + fw, y1],
            [x0 + fw + depth, y1 - depth],
            [x0 + fw + depth, y1 - fh - depth],
            [x0 + fw, y1 - fh],
        ]
    )
    base = _jitter(rng, [180, 130, 80], 18)
    for poly, light in ((front, 1.0), (side, 0.75), (top, 1.2)):
        face = np.zeros_like(mask)
        _fill(face, poly)
        col[face > 0] = np.clip(base * light, 0, 255)
        mask |= face
    tape = np.abs(xx - (x0 + fw / 2)) < fw * 0.06
    col[tape & (yy > y1 - fh)] = _jitter(rng, [215, 190, 140], 10)
    return mask.astype(bool), col


def _cone(rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray]:
    mask, col, yy, xx = _canvas(s)
    h = s * rng.uniform(0.8, 0.98)
    bw = h * rng.uniform(0.5, 0.7)
    cx, y1 = s / 2, s - 1
    plate = h * 0.08
    _fill(mask, np.array([[cx - bw / 2, y1 - plate], [cx + bw / 2, y1 - plate], [cx, y1 - h]]))
    _fill(
        mask,
        np.array(
            [
                [cx - bw * 0.6, y1],
                [cx + bw * 0.6, y1],
                [cx + bw * 0.6, y1 - plate],
                [cx - bw * 0.6, y1 - plate],
            ]
        ),
    )
    orange = _jitter(rng, [245, 120, 25], 15)
    col[:] = orange * np.clip(1.1 - 0.3 * np.abs(xx - cx) / max(bw / 2, 1), 0.6, 1.1)[..., None]
    rel = (y1 - yy) / h
    stripe = ((rel > 0.35) & (rel < 0.45)) | ((rel > 0.6) & (rel < 0.68))
    col[stripe] = 240.0
    col[rel < 0.08] = orange * 0.7
    return mask.astype(bool), col


def _barrel(rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray]:
    mask, col, yy, xx = _canvas(s)
    h = s * rng.uniform(0.7, 0.95)
    w = h * rng.uniform(0.5, 0.7)
    cx, y1 = s / 2, s - 1
    e = max(1, round(w * 0.12))
    cv2.rectangle(
        mask, (round(cx - w / 2), round(y1 - h + e)), (round(cx + w / 2), round(y1 - e)), 1, -1
    )
    cv2.ellipse(mask, (round(cx), round(y1 - h + e)), (round(w / 2), e), 0, 0, 360, 1, -1)
    cv2.ellipse(mask, (round(cx), round(y1 - e)), (round(w / 2), e), 0, 0, 360, 1, -1)
    blue = _jitter(rng, [40, 90, 200], 22)
    u = np.clip((xx - cx) / max(w / 2, 1), -1, 1)
    col[:] = blue * (0.55 + 0.55 * np.sqrt(1 - u**2))[..., None]
    rel = (y1 - yy) / h
    ribs = (np.abs(rel - 0.33) < 0.03) | (np.abs(rel - 0.66) < 0.03)
    col[ribs] *= 0.55
    col[yy < y1 - h + 2 * e] = blue * 0.6
    return mask.astype(bool), col


def _tire(rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray]:
    mask, col, yy, xx = _canvas(s)
    r = s * rng.uniform(0.3, 0.45)
    inner = r * rng.uniform(0.4, 0.55)
    cx, cy = s / 2, s - r - 1
    d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    ring = (d <= r) & (d >= inner)
    mask[ring] = 1
    grey = rng.uniform(35, 60)
    ang = np.arctan2(yy - cy, xx - cx)
    tread = (np.sin(ang * rng.integers(14, 24)) > 0.3) & (d > r * 0.82)
    col[:] = grey
    col[tread] = grey + 35
    col[(d < inner * 1.15) & ring] = grey + 55  # rim edge
    return mask.astype(bool), col


def _bottle(rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray]:
    mask, col, yy, xx = _canvas(s)
    h = s * rng.uniform(0.75, 0.98)
    w = h * rng.uniform(0.25, 0.35)
    cx, y1 = s / 2, s - 1
    body_top = y1 - 0.62 * h
    nw = w * 0.38
    poly = np.array(
        [
            [cx - w / 2, y1],
            [cx + w / 2, y1],
            [cx + w / 2, body_top],
            [cx + nw / 2, y1 - 0.8 * h],
            [cx + nw / 2, y1 - h],
            [cx - nw / 2, y1 - h],
            [cx - nw / 2, y1 - 0.8 * h],
            [cx - w / 2, body_top],
        ]
    )
    _fill(mask, poly)
    teal = _jitter(rng, [35, 175, 175], 20)
    col[:] = teal * (0.8 + 0.3 * np.cos(np.clip((xx - cx) / max(w / 2, 1), -1, 1) * 1.4))[..., None]
    col[np.abs(xx - (cx - w * 0.2)) < w * 0.06] = teal * 0.4 + 150  # highlight
    rel = (y1 - yy) / h
    col[(rel > 0.2) & (rel < 0.42)] = _jitter(rng, [235, 235, 225], 10)  # label
    col[rel > 0.93] = _jitter(rng, [200, 40, 40], 20)  # cap
    return mask.astype(bool), col


def _tree(rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray]:
    mask, col, _, _ = _canvas(s)
    cx, y1 = s / 2, s - 1
    tw = s * rng.uniform(0.07, 0.12)
    th = s * rng.uniform(0.3, 0.45)
    cv2.rectangle(
        mask, (round(cx - tw / 2), round(y1 - th)), (round(cx + tw / 2), round(y1)), 1, -1
    )
    trunk = mask.astype(bool).copy()
    canopy = np.zeros_like(mask)
    crown_r = s * rng.uniform(0.22, 0.3)
    ccy = y1 - th - crown_r * 0.6
    for _ in range(int(rng.integers(3, 6))):
        ox, oy = rng.uniform(-0.5, 0.5) * crown_r, rng.uniform(-0.5, 0.3) * crown_r
        rr = crown_r * rng.uniform(0.55, 0.8)
        cv2.circle(canopy, (round(cx + ox), round(ccy + oy)), max(1, round(rr)), 1, -1)
    mask |= canopy
    green = _jitter(rng, [45, 125, 45], 18)
    leaf = 0.7 + 0.5 * _noise(rng, s, s, max(2.0, s / 12))
    col[:] = green * leaf[..., None]
    col[trunk & (canopy == 0)] = _jitter(rng, [110, 75, 45], 15)
    return mask.astype(bool), col


def _duck(rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray]:
    mask, col, yy, xx = _canvas(s)
    bw, bh = s * rng.uniform(0.3, 0.4), s * rng.uniform(0.17, 0.22)
    cx, y1 = s / 2, s - 1
    cy = y1 - bh
    face = 1 if rng.random() < 0.5 else -1
    cv2.ellipse(mask, (round(cx), round(cy)), (round(bw), round(bh)), 0, 0, 360, 1, -1)
    hr = bh * rng.uniform(0.6, 0.8)
    hx, hy = cx + face * bw * 0.55, cy - bh - hr * 0.6
    cv2.circle(mask, (round(hx), round(hy)), max(1, round(hr)), 1, -1)
    beak = np.array(
        [
            [hx + face * hr * 0.7, hy - hr * 0.25],
            [hx + face * hr * 1.7, hy],
            [hx + face * hr * 0.7, hy + hr * 0.3],
        ]
    )
    beak_mask = np.zeros_like(mask)
    _fill(beak_mask, beak)
    mask |= beak_mask
    yellow = _jitter(rng, [245, 215, 40], 15)
    col[:] = yellow * (0.85 + 0.2 * (1 - np.clip((yy - (cy - bh)) / (2 * bh), 0, 1)))[..., None]
    col[beak_mask > 0] = _jitter(rng, [240, 130, 20], 10)
    eye = (xx - (hx + face * hr * 0.3)) ** 2 + (yy - (hy - hr * 0.2)) ** 2 < (0.18 * hr) ** 2
    col[eye] = 20.0
    return mask.astype(bool), col


def _star(rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray]:
    mask, col, yy, xx = _canvas(s)
    r_out = s * rng.uniform(0.35, 0.48)
    r_in = r_out * rng.uniform(0.38, 0.5)
    cx, cy = s / 2, s - r_out - 1
    rot = rng.uniform(-0.3, 0.3)
    ang = rot - np.pi / 2 + np.arange(10) * np.pi / 5
    rad = np.where(np.arange(10) % 2 == 0, r_out, r_in)
    _fill(mask, np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1))
    purple = _jitter(rng, [130, 50, 200], 20)
    d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / max(r_out, 1.0)
    col[:] = purple * np.clip(1.25 - 0.6 * d, 0.6, 1.25)[..., None]
    return mask.astype(bool), col


def _kite(rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray]:
    mask, col, yy, xx = _canvas(s)
    h = s * rng.uniform(0.8, 0.98)
    w = h * rng.uniform(0.55, 0.75)
    cx, y1 = s / 2, s - 1
    cy = y1 - h * 0.65
    _fill(mask, np.array([[cx, y1 - h], [cx + w / 2, cy], [cx, y1], [cx - w / 2, cy]]))
    pink = _jitter(rng, [250, 125, 175], 15)
    white = _jitter(rng, [245, 245, 245], 8)
    quadrant = ((xx < cx) ^ (yy < cy))[..., None]
    col[:] = np.where(quadrant, pink, white)
    spar = (np.abs(xx - cx) < max(1.0, s * 0.012)) | (np.abs(yy - cy) < max(1.0, s * 0.012))
    col[spar] = 60.0
    return mask.astype(bool), col


PAINTERS: dict[str, Painter] = {
    "ball": _ball,
    "box": _box,
    "cone": _cone,
    "barrel": _barrel,
    "tire": _tire,
    "bottle": _bottle,
    "tree": _tree,
    "duck": _duck,
    "star": _star,
    "kite": _kite,
}
#: Relative size of each class (trees are tall, balls and ducks small).
_SCALE = {"tree": 1.6, "ball": 0.7, "duck": 0.75, "tire": 0.8, "bottle": 0.8, "star": 0.8}
_FLOATING = ("kite", "star")


@dataclass(frozen=True)
class _Placement:
    name: str
    x: float  # base centre, pixels of the full canvas
    y: float  # base row (bottom of the object)
    size: int  # local canvas side, pixels


def _layout(
    rng: np.random.Generator,
    h: int,
    w: int,
    horizon: float,
    *,
    count: int,
    classes: Sequence[str],
) -> list[_Placement]:
    """Objects to draw, sorted far to near (painter's order)."""
    out = []
    for _ in range(count):
        name = str(classes[int(rng.integers(len(classes)))])
        y = rng.uniform(horizon + 0.04 * h, 1.08 * h)
        t = (y - horizon) / max(h - horizon, 1.0)  # 0 at the horizon, 1 at the bottom edge
        size = h * (0.12 + 0.33 * t) * _SCALE.get(name, 1.0) * rng.uniform(0.85, 1.15)
        if name in _FLOATING and rng.random() < 0.5:
            y = rng.uniform(0.25 * h, horizon + 0.1 * h)
            size = h * rng.uniform(0.15, 0.3)
        out.append(_Placement(name, float(rng.uniform(0, w)), float(y), max(6, int(size))))
    return sorted(out, key=lambda p: (p.y, p.x))


def _apply_effects(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Lighting gradient, gain, colour cast, optional blur and sensor noise."""
    h, w = img.shape[:2]
    gy, gx = rng.uniform(-0.35, 0.35, 2)
    yy = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    xx = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    light = rng.uniform(0.65, 1.25) * (1.0 + gy * yy + gx * xx)
    cast = rng.uniform(0.92, 1.08, 3).astype(np.float32)
    img = img * light[..., None] * cast
    if rng.random() < 0.35:
        sigma = float(rng.uniform(0.6, 2.0))
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    noise = rng.uniform(0.0, 6.0)
    img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
    return img


def generate_scene(
    seed: int,
    index: int = 0,
    size: tuple[int, int] = DEFAULT_SIZE,
    *,
    objects: bool | int = True,
    classes: Sequence[str] = OBJECT_NAMES,
    effects: bool = True,
    min_instance_pixels: int | None = None,
) -> Scene:
    """Draw scene ``index`` of the world ``seed``.

    Args:
        seed: world seed (training and held-out splits use different seeds).
        index: scene number within the world.
        size: (height, width) in pixels; a width larger than the height times 4/3 gives a wide
            panorama (see :func:`generate_sequence`).
        objects: ``True`` for 2-8 random objects, an int for exactly that many, ``False`` for
            none (the exact background of the full scene).
        classes: object classes to sample from (default: all ten).
        effects: apply lighting, blur and noise (``False``: the exact drawn colours).
        min_instance_pixels: smallest visible part kept in the instance map (default 0.05 %
            of the frame, at least 16 pixels).

    Returns:
        The scene (see the module docstring for the ground-truth encoding).

    Raises:
        ValueError: an unknown class name or a size below 32 pixels.
    """
    h, w = int(size[0]), int(size[1])
    if h < 32 or w < 32:
        raise ValueError(f"scene size must be at least 32x32, got {h}x{w}")
    unknown = [c for c in classes if c not in PAINTERS]
    if unknown or not classes:
        raise ValueError(f"unknown or no object classes {unknown}; known: {', '.join(PAINTERS)}")
    bg_rng, obj_rng = _streams(seed, index)
    img, semantic, horizon = _background(bg_rng, h, w)
    instances = np.zeros((h, w), np.uint16)
    if objects is True:
        count = int(obj_rng.integers(OBJECTS_PER_SCENE[0], OBJECTS_PER_SCENE[1] + 1))
        count = max(1, round(count * w / (h * 4 / 3)))  # panoramas hold proportionally more
    else:
        count = int(objects)
    placements = _layout(obj_rng, h, w, horizon, count=count, classes=classes)
    drawn: list[int] = []
    for k, place in enumerate(placements, start=1):
        mask, colour = PAINTERS[place.name](obj_rng, place.size)
        s = place.size
        x0, y0 = round(place.x - s / 2), round(place.y - s)
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x0 + s, w), min(y0 + s, h)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        local = mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        region = (slice(cy0, cy1), slice(cx0, cx1))
        img[region][local] = colour[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0][local]
        semantic[region][local] = class_index(place.name)
        instances[region][local] = k
        drawn.append(k)
    min_px = max(16, int(0.0005 * h * w)) if min_instance_pixels is None else min_instance_pixels
    counts = np.bincount(instances.ravel(), minlength=len(placements) + 1)
    keep = [k for k in drawn if counts[k] >= min_px]
    lut = np.zeros(len(placements) + 1, np.uint16)
    lut[keep] = np.arange(1, len(keep) + 1, dtype=np.uint16)
    instance_classes = np.array([class_index(placements[k - 1].name) for k in keep], dtype=np.uint8)
    if effects:
        img = _apply_effects(obj_rng, img)
    rgb = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return Scene(rgb, semantic, lut[instances], instance_classes)


def generate_sequence(
    seed: int,
    frames: int,
    size: tuple[int, int] = DEFAULT_SIZE,
    *,
    index: int = 0,
    step: int = 8,
    effects: bool = True,
) -> Iterator[Scene]:
    """A camera panning right over one wide scene: ``frames`` crops, ``step`` pixels apart.

    The panorama is drawn once (``size`` high, wide enough for every frame), so objects keep
    their place and appearance between frames and move left by ``step`` pixels per frame.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    h, w = size
    wide = generate_scene(seed, index, (h, w + step * (frames - 1)), effects=effects)
    for t in range(frames):
        yield wide.crop(t * step, w)
