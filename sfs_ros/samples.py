"""Sample input for demos and tests, without committing binary files.

* :func:`sample_image_paths`: the photos shipped inside the installed ``ultralytics`` package
  (``ultralytics/assets/bus.jpg`` and ``zidane.jpg``), found without importing ultralytics.
* :func:`synthetic_scene`: a deterministic synthetic scene (coloured shapes on a gradient),
  for tests and as a fallback when ultralytics is not installed.
* :func:`frame_sequence`: the frames a demo camera plays: a video, a folder of images, or a
  panning sequence (a crop window sliding across one or more still images).

Everything here is ROS-free and returns RGB ``uint8`` arrays of shape ``(H, W, 3)``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from sfs_ros.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, read_rgb

__all__ = [
    "SAMPLE_NAMES",
    "SOURCE_SAMPLES",
    "SOURCE_SYNTHETIC",
    "SamplesNotFoundError",
    "frame_sequence",
    "pan_frames",
    "sample_image_paths",
    "sample_images",
    "synthetic_scene",
]

SAMPLE_NAMES: tuple[str, ...] = ("bus.jpg", "zidane.jpg")
"""The images of ``ultralytics/assets/`` used as bundled samples."""

SOURCE_SAMPLES = "samples"
"""``source`` value: pan across the bundled sample photos."""
SOURCE_SYNTHETIC = "synthetic"
"""``source`` value: pan across :func:`synthetic_scene` (no files needed)."""

# Panning: the window covers this share of the largest crop of the output's aspect ratio
# that fits the image, and crosses the image in this many frames (one way).
_PAN_ZOOM = 0.7
_PAN_STEPS = 24


class SamplesNotFoundError(FileNotFoundError):
    """The bundled sample images (from the ultralytics package) are not installed."""


# ---------------------------------------------------------------------------- samples
def _ultralytics_dir() -> Path | None:
    """Directory of the installed ``ultralytics`` package, located without importing it."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def sample_image_paths() -> list[Path]:
    """Paths of the bundled sample photos (``bus.jpg``, ``zidane.jpg``).

    Raises:
        SamplesNotFoundError: ultralytics is not installed, or its ``assets/`` lacks the files.
    """
    package = _ultralytics_dir()
    hint = (
        "The demo's sample images come from the installed 'ultralytics' package "
        f"(ultralytics/assets/{', '.join(SAMPLE_NAMES)}). Install the project's requirements "
        "(scripts/setup_env.sh or `pip install -r requirements.txt`), or pass a video, an "
        f"image or a folder of images as the source, or source '{SOURCE_SYNTHETIC}'."
    )
    if package is None:
        raise SamplesNotFoundError(f"the 'ultralytics' package is not installed. {hint}")
    paths = [package / "assets" / name for name in SAMPLE_NAMES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SamplesNotFoundError(f"sample images missing: {', '.join(missing)}. {hint}")
    return paths


def sample_images() -> list[np.ndarray]:
    """The bundled sample photos as RGB arrays (see :func:`sample_image_paths`)."""
    return [read_rgb(path) for path in sample_image_paths()]


# -------------------------------------------------------------------------- synthetic
def synthetic_scene(width: int = 640, height: int = 480, seed: int = 0) -> np.ndarray:
    """A deterministic synthetic scene: coloured shapes on a diagonal gradient.

    The same ``(width, height, seed)`` always gives the same pixels. Shapes are filled
    rectangles, circles and triangles in saturated colours, drawn without anti-aliasing so
    that every pixel has one of a few exact colours or the gradient's.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"synthetic_scene: empty size {width}x{height}")
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xs / max(width - 1, 1) + ys / max(height - 1, 1)) / 2.0  # 0 top-left .. 1 bottom-right
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = (40 + 80 * t).astype(np.uint8)
    image[..., 1] = (60 + 60 * (1 - t)).astype(np.uint8)
    image[..., 2] = (120 + 100 * t).astype(np.uint8)

    palette = [
        (230, 25, 75),
        (60, 180, 75),
        (255, 225, 25),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
    ]
    scale = min(width, height)
    n_shapes = 6 + int(rng.integers(0, 4))
    for index in range(n_shapes):
        color = tuple(int(c) for c in palette[index % len(palette)])
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = max(2, int(scale * rng.uniform(0.08, 0.25)))
        kind = index % 3
        if kind == 0:
            top_left, bottom_right = (cx - size, cy - size // 2), (cx + size, cy + size // 2)
            cv2.rectangle(image, top_left, bottom_right, color, -1)
        elif kind == 1:
            cv2.circle(image, (cx, cy), size, color, -1, lineType=cv2.LINE_8)
        else:
            pts = np.array([[cx, cy - size], [cx - size, cy + size], [cx + size, cy + size]])
            cv2.fillPoly(image, [pts.astype(np.int32)], color, lineType=cv2.LINE_8)
    return image


# ---------------------------------------------------------------------------- calibration
def calibration_frames(
    width: int, height: int, count: int = 12, folder: Path | None = None
) -> list[np.ndarray]:
    """``count`` RGB frames of ``width`` x ``height`` for post-training quantisation.

    From ``folder`` (the user's own images, the first ``count`` in name order, each resized to
    the network input) when given; else the bundled sample photos, whole and as panning crops
    (:func:`pan_frames`), then synthetic scenes; deterministic. Without the photos
    (ultralytics not installed) only synthetic scenes are used, and the log says so.
    """
    from sfs_ros.runtime import LOG

    if folder is not None:
        from sfs_ros.images import IMAGE_SUFFIXES, read_rgb

        files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return [_fit(read_rgb(p), width, height) for p in files[:count]]
    frames: list[np.ndarray] = []
    try:
        photos = sample_images()
    except SamplesNotFoundError as exc:
        LOG.warning("calibrating on synthetic scenes only: %s", exc)
        photos = []
    for photo in photos:
        frames.append(_fit(photo, width, height))
        frames.extend(pan_frames(photo, width, height, steps=3))
    seed = 0
    while len(frames) < count:
        frames.append(synthetic_scene(width, height, seed))
        seed += 1
    return frames[:count]


# ---------------------------------------------------------------------------- sequences
def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` resized to ``width`` x ``height`` (0 keeps that dimension's size)."""
    h, w = image.shape[:2]
    width, height = width or w, height or h
    if (w, h) == (width, height):
        return np.ascontiguousarray(image)
    shrinking = width * height < w * h
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp)


def pan_frames(
    image: np.ndarray, width: int, height: int, steps: int = _PAN_STEPS
) -> Iterator[np.ndarray]:
    """A crop window of the output's aspect ratio sliding across ``image`` and back.

    The window covers 70 % of the largest such crop that fits and moves along the image's
    longer free axis (left to right, or top to bottom) in ``steps`` frames, then back, so a
    looped sequence has no jump (``2 * steps - 2`` frames in all). Each crop is resized to
    ``width`` x ``height`` (0 = the crop's own size) when it is yielded, so nothing is held in
    memory but the source image.
    """
    h, w = image.shape[:2]
    width, height = width or w, height or h
    aspect = width / height
    crop_w = min(w, h * aspect)
    crop_h = crop_w / aspect
    crop_w, crop_h = max(1, int(crop_w * _PAN_ZOOM)), max(1, int(crop_h * _PAN_ZOOM))
    free_x, free_y = w - crop_w, h - crop_h
    steps = max(2, steps)
    positions = np.linspace(0.0, 1.0, steps)
    positions = np.concatenate([positions, positions[-2:0:-1]])  # there and back
    for p in positions:
        if free_x >= free_y:
            x0, y0 = round(p * free_x), free_y // 2
        else:
            x0, y0 = free_x // 2, round(p * free_y)
        yield _fit(image[y0 : y0 + crop_h, x0 : x0 + crop_w], width, height)


def _still_images(source: str) -> list[np.ndarray] | None:
    """The still images a source pans across, or None when the source is not stills."""
    if source == SOURCE_SAMPLES:
        return sample_images()
    if source == SOURCE_SYNTHETIC:
        return [synthetic_scene(960, 540, seed=0), synthetic_scene(720, 720, seed=1)]
    path = Path(source).expanduser()
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return [read_rgb(path)]
    return None


def _video_frames(path: Path, width: int, height: int) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"'{path}' could not be opened as a video")
    try:
        emitted = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            emitted += 1
            yield _fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), width, height)
        if emitted == 0:
            raise ValueError(f"video '{path}' has no readable frames")
    finally:
        cap.release()


def _folder_images(path: Path) -> list[Path]:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"folder '{path}' holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def frame_sequence(
    source: str, width: int = 640, height: int = 480, loop: bool = True
) -> Iterator[np.ndarray]:
    """RGB frames of ``width`` x ``height`` (0 = the source's own size) from ``source``.

    ``source`` is ``"samples"`` (pan across the bundled photos), ``"synthetic"`` (pan across
    synthetic scenes), a still image file (panned across), a folder of images (played in name
    order, each resized) or a video file. With ``loop`` the sequence starts over at its end,
    forever; otherwise it ends.

    Raises:
        SamplesNotFoundError: ``"samples"`` without the ultralytics assets.
        ValueError: a path that does not exist, is of an unknown kind, or cannot be decoded.
    """
    if width < 0 or height < 0:
        raise ValueError(f"frame_sequence: negative size {width}x{height}")
    stills = _still_images(source)
    path = Path(source).expanduser()
    if stills is not None:

        def one_pass() -> Iterator[np.ndarray]:
            for still in stills:
                yield from pan_frames(still, width, height)

    elif path.is_dir():
        files = _folder_images(path)

        def one_pass() -> Iterator[np.ndarray]:
            for file in files:
                yield _fit(read_rgb(file), width, height)

    elif path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:

        def one_pass() -> Iterator[np.ndarray]:
            yield from _video_frames(path, width, height)

    elif path.exists():
        raise ValueError(
            f"source '{source}': unknown file type (images: {sorted(IMAGE_SUFFIXES)}, "
            f"videos: {sorted(VIDEO_SUFFIXES)})"
        )
    else:
        raise ValueError(
            f"source '{source}' does not exist (use a video, an image, a folder of images, "
            f"'{SOURCE_SAMPLES}' or '{SOURCE_SYNTHETIC}')"
        )
    return _repeat(one_pass, loop)


def _repeat(one_pass: Callable[[], Iterator[np.ndarray]], loop: bool) -> Iterator[np.ndarray]:
    """``one_pass()`` once, or over and over with ``loop``."""
    while True:
        yield from one_pass()
        if not loop:
            return
