"""FastSAM mask generator: one CNN pass → class-agnostic masks at a working resolution.

Loads any ultralytics FastSAM / YOLOv8-seg checkpoint through ``ultralytics.FastSAM`` once,
then runs a lean predictor: letterbox → forward → NMS → masks → FastSAM's full-image-box rule.
``mask_resolution`` picks where the masks are decoded:

``edges`` (default)
    as ``work``, and the masks' logits on the working grid and the boxes they are cropped with
    are kept (:attr:`MaskSet.logits`, :attr:`MaskSet.crop_boxes`): the pipeline paints at the
    working resolution and then re-decides the pixels along edges at input resolution, as
    ultralytics' retina masks decide them (:mod:`sfs_ros.edges`).
``work``
    from the prototypes at 1/4 of the network resolution (the *working resolution*); the
    pipeline votes and paints there and upsamples only the final label map. Fastest; edges are
    as coarse as the prototypes.
``input``
    at the input image's resolution with ultralytics' own ``process_mask_native`` (what
    ``retina_masks=True`` does), so masks and boxes equal ultralytics' FastSAM predictor on the
    same weights (test/test_parity.py). Sharp edges, several times the post-processing cost.

As in ultralytics' FastSAM predictor, masks are cropped to their network boxes, masks left
without pixels are dropped, and the border snap / full-image-box rule changes only the boxes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from sfs_ros.errors import ConfigError
from sfs_ros.fusion import mask_areas
from sfs_ros.models.backends import InputNormalisation
from sfs_ros.models.networks import ExportedTensors, Network, TorchFastSAM
from sfs_ros.params import FastSAMConfig
from sfs_ros.runtime import LOG, DeviceChoice

MASK_RESOLUTIONS = ("edges", "work", "input")  # values of fastsam.mask_resolution
BORDER_SNAP_PX = 20  # FastSAM: boxes within 20 px of the image border are snapped to it
FULL_BOX_IOU = 0.9  # FastSAM: boxes with IoU > 0.9 against the whole image become the full box
INPUT_SCALE = 255.0  # ultralytics' network input: the letterboxed RGB image / 255
FASTSAM_INPUT = InputNormalisation((0.0, 0.0, 0.0), (INPUT_SCALE, INPUT_SCALE, INPUT_SCALE))
"""The same conversion for the exported network (done inside the compiled model)."""


@dataclass
class MaskSet:
    """Class-agnostic masks of one frame.

    Attributes:
        masks: (N, h, w) bool at the working resolution (h, w), in score order.
        boxes: (N, 4) float32 xyxy boxes in input-image pixels.
        scores: (N,) float32 confidences.
        image_hw: (H, W) of the input image.
        areas: (N,) int64 pixel count of each mask; counted from ``masks`` when not given.
        logits: (N, gh, gw) float32 mask logits, not cropped to the boxes, on the grid that
            ultralytics' ``process_mask_native`` upsamples to the image in one bilinear step
            (``fastsam.mask_resolution: edges``; else None): the working grid, or for letterbox
            paddings of part of a prototype pixel its 2x or 4x upsampled crop.
        crop_boxes: (N, 4) float32 xyxy input pixels the input-resolution masks are cropped to
            (the boxes before FastSAM's border rule; with ``logits``).
    """

    masks: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    image_hw: tuple[int, int]
    areas: np.ndarray | None = None
    logits: np.ndarray | None = None
    crop_boxes: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.areas is None:
            self.areas = mask_areas(self.masks)
        elif self.areas.shape != (len(self.masks),):
            raise ValueError(f"areas {self.areas.shape} do not match {len(self.masks)} masks")

    def __len__(self) -> int:
        return len(self.masks)

    def grid_instances(self, top_first: np.ndarray, instance_work: np.ndarray) -> np.ndarray:
        """The instance map on the grid of :attr:`logits`, painted in the order ``top_first``:
        ``instance_work`` (the working paint) when that grid is the working grid."""
        if self.logits is None:
            raise ValueError("these masks carry no logits (fastsam.mask_resolution is not edges)")
        grid_hw = self.logits.shape[1:]
        if grid_hw == instance_work.shape:
            return instance_work
        import torch

        masks = self.logits > 0
        _crop_to_boxes(masks, torch.from_numpy(self.crop_boxes), self.image_hw)
        out = np.zeros(grid_hw, np.uint16)
        for index in np.asarray(top_first)[::-1].tolist():
            out[masks[index]] = index + 1
        return out

    @property
    def work_hw(self) -> tuple[int, int]:
        """(h, w) of the working resolution."""
        return self.masks.shape[1], self.masks.shape[2]

    @classmethod
    def empty(
        cls, image_hw: tuple[int, int], work_hw: tuple[int, int], *, edges: bool = False
    ) -> MaskSet:
        """A frame without masks (with empty ``logits`` and ``crop_boxes`` when ``edges``: the
        pipeline then still decides the closed-set edges at input resolution)."""
        return cls(
            np.zeros((0, *work_hw), bool),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            image_hw,
            logits=np.zeros((0, *work_hw), np.float32) if edges else None,
            crop_boxes=np.zeros((0, 4), np.float32) if edges else None,
        )


@dataclass(frozen=True)
class Letterbox:
    """Geometry of the resize + pad from the input image to the network input."""

    scale: float
    new_hw: tuple[int, int]  # resized image size inside the padded input
    pad_tl: tuple[int, int]  # (top, left) padding
    input_hw: tuple[int, int]  # padded network input size

    @classmethod
    def fit(cls, image_hw: tuple[int, int], imgsz: int, stride: int) -> Letterbox:
        """Scale the long side to ``imgsz`` and pad each side to a multiple of ``stride``."""
        h, w = image_hw
        scale = imgsz / max(h, w)
        new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
        in_h = int(np.ceil(new_h / stride) * stride)
        in_w = int(np.ceil(new_w / stride) * stride)
        top, left = (in_h - new_h) // 2, (in_w - new_w) // 2
        return cls(scale, (new_h, new_w), (top, left), (in_h, in_w))


class FastSAMMaskGenerator:
    """Class-agnostic masks from a FastSAM (YOLOv8-seg) checkpoint; load once, call per frame.

    A :class:`~sfs_ros.models.protocols.MaskGenerator`. Pre- and post-processing are torch; the
    network pass goes through :attr:`network` (:func:`fastsam_network`: the torch module, or its
    export run by ONNX Runtime / OpenVINO). ``is_random``: the weights are random (set by the
    caller that resolved them, :func:`sfs_ros.weights.resolve_fastsam_weights`).
    """

    def __init__(
        self,
        weights: str,
        device: DeviceChoice,
        *,
        imgsz: int = 640,
        conf: float = 0.4,
        iou: float = 0.9,
        max_masks: int = 100,
        mask_resolution: str = "work",
        backend: str = "torch",
        threads: int = 0,
        openvino_precision: str = "f32",
        is_random: bool = False,
    ) -> None:
        import torch

        from sfs_ros.weights import open_fastsam

        self.weights = weights
        self.device = device
        self.imgsz = int(imgsz)
        self.conf = float(conf)
        self.iou = float(iou)
        self.max_masks = int(max_masks)
        if mask_resolution not in MASK_RESOLUTIONS:
            raise ConfigError(
                f"fastsam.mask_resolution '{mask_resolution}' is not one of "
                f"{', '.join(MASK_RESOLUTIONS)}"
            )
        self.mask_resolution = mask_resolution
        wrapper = open_fastsam(weights)  # restricted unpickling; one clear error line
        net = wrapper.model
        if not isinstance(net, torch.nn.Module):
            raise ValueError(f"{weights}: expected a PyTorch FastSAM/YOLOv8-seg checkpoint")
        net = net.fuse() if hasattr(net, "fuse") else net
        self.net = net.to(device.device).eval()
        if device.half:
            self.net = self.net.half()
        self.stride = int(max(getattr(net, "stride", torch.tensor([32])).max().item(), 32))
        self.num_classes = len(getattr(net, "names", {0: "object"}))
        self.backend = backend
        self.is_random = bool(is_random)
        # What runs the network: the torch module, or its export (onnx / openvino).
        self.network = fastsam_network(
            self.net,
            weights,
            backend,
            device,
            self.to_tensor,
            threads=threads,
            openvino_precision=openvino_precision,
        )
        self.last_timings: dict[str, float] = {}  # ms of the last call: preprocess/forward/post
        LOG.info(
            "FastSAM %s loaded on %s (imgsz %d, masks at %s resolution, backend %s)",
            weights,
            device.device,
            self.imgsz,
            mask_resolution,
            backend,
        )

    def apply(self, settings: FastSAMConfig) -> None:
        """Take the live settings of a changed ``fastsam`` section (``conf``, ``iou``,
        ``max_masks``), used from the next call on; the others are fixed at load."""
        self.conf = settings.conf
        self.iou = settings.iou
        self.max_masks = settings.max_masks

    # ------------------------------------------------------------------------------ stages
    def preprocess(self, rgb: np.ndarray) -> tuple[object, Letterbox]:
        """RGB uint8 (H, W, 3) → normalised (1, 3, h, w) tensor and the letterbox geometry
        (:meth:`network_image` then :meth:`to_tensor`: what the torch network computes on)."""
        image, box = self.network_image(rgb)
        return self.to_tensor(image), box

    def network_image(self, rgb: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """RGB uint8 (H, W, 3) → the letterboxed uint8 image the network takes (grey padding
        114, as ultralytics) and the letterbox geometry."""
        box = Letterbox.fit(rgb.shape[:2], self.imgsz, self.stride)
        resized = rgb
        if box.new_hw != rgb.shape[:2]:
            resized = cv2.resize(rgb, box.new_hw[::-1], interpolation=cv2.INTER_LINEAR)
        padded = resized
        if box.input_hw != box.new_hw:
            padded = np.full((*box.input_hw, 3), 114, np.uint8)
            top, left = box.pad_tl
            padded[top : top + box.new_hw[0], left : left + box.new_hw[1]] = resized
        return padded, box

    def to_tensor(self, image: np.ndarray) -> object:
        """The letterboxed uint8 image → the torch network's (1, 3, h, w) input: ``/ 255`` in
        float32 (float16 with ``half``), on the model's device."""
        import torch

        if not image.flags.writeable:  # e.g. a zero-copy view of a ROS message buffer
            image = image.copy()
        # Channels-first and contiguous before the arithmetic: on the permuted (channels-last)
        # view the element-wise steps are much slower.
        tensor = torch.from_numpy(image).to(self.device.device).permute(2, 0, 1).contiguous()
        tensor = tensor.half() if self.device.half else tensor.float()
        return tensor.div_(INPUT_SCALE)[None]

    def forward(self, image: np.ndarray) -> tuple[object, object]:
        """Network pass on the letterboxed uint8 image (:meth:`network_image`): returns
        (predictions (1, 4+nc+32, A), prototypes (1, 32, h/4, w/4))."""
        preds, proto = self.network(image)
        return preds, proto

    def postprocess(
        self, preds: object, proto: object, box: Letterbox, image_hw: tuple[int, int]
    ) -> MaskSet:
        """NMS, masks (at the working or input resolution) and the full-image-box rule."""
        import torch
        from ultralytics.utils import ops

        with torch.inference_mode():
            boxes, scores, coeffs = class_agnostic_nms(
                preds.float(), self.num_classes, self.conf, self.iou, self.max_masks
            )
            proto = proto[0].float()
            geometry = self._work_geometry(proto.shape[1:], box, image_hw)
            work_hw = geometry[2]
            if scores.shape[0] == 0:
                return MaskSet.empty(image_hw, work_hw, edges=self.mask_resolution == "edges")
            # Network pixels → input pixels, exactly as ultralytics scales its boxes.
            boxes = ops.scale_boxes(box.input_hw, boxes.clone(), image_hw)
            logits = None
            if self.mask_resolution == "input":
                masks = ops.process_mask_native(proto, coeffs, boxes, image_hw).bool()
                masks = masks.cpu().numpy()
            else:
                masks, logits = self._work_masks(proto, coeffs, boxes, image_hw, geometry)
                if self.mask_resolution == "edges":
                    logits = _retina_logit_grid(proto, coeffs, logits, geometry, image_hw)
            areas = mask_areas(masks)
            keep = areas > 0  # ultralytics drops masks left without pixels
            if not keep.all():
                masks, areas = masks[keep], areas[keep]
                logits = None if logits is None else logits[keep]
                kept = torch.from_numpy(keep).to(boxes.device)
                boxes, scores = boxes[kept], scores[kept]
            if scores.shape[0] == 0:
                return MaskSet.empty(image_hw, work_hw, edges=self.mask_resolution == "edges")
            edges = self.mask_resolution == "edges"
            return MaskSet(
                masks,
                _full_box_rule(boxes, image_hw).cpu().numpy().astype(np.float32),
                scores.cpu().numpy().astype(np.float32),
                image_hw,
                areas,
                logits=logits if edges else None,
                crop_boxes=boxes.cpu().numpy().astype(np.float32) if edges else None,
            )

    def output_hw(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of the masks this generator returns for an image of ``image_hw``."""
        box = Letterbox.fit(image_hw, self.imgsz, self.stride)
        proto_hw = (box.input_hw[0] // 4, box.input_hw[1] // 4)  # prototypes at 1/4
        return self._work_geometry(proto_hw, box, image_hw)[2]

    def _work_geometry(
        self, proto_hw: tuple[int, int], box: Letterbox, image_hw: tuple[int, int]
    ) -> tuple[int, int, tuple[int, int]]:
        """(row, column) of the image's corner on the prototype grid and the masks' (h, w):
        the un-padded prototype grid (``work``) or the input image (``input``)."""
        ph, pw = proto_hw
        ratio = ph / box.input_hw[0]  # prototype pixels per network pixel (1/4)
        r0, c0 = round(box.pad_tl[0] * ratio), round(box.pad_tl[1] * ratio)
        if self.mask_resolution == "input":
            return r0, c0, (int(image_hw[0]), int(image_hw[1]))
        wh = max(1, round(box.new_hw[0] * ratio)), max(1, round(box.new_hw[1] * ratio))
        return r0, c0, (min(wh[0], ph - r0), min(wh[1], pw - c0))

    @staticmethod
    def _work_masks(
        proto: object,
        coeffs: object,
        boxes: object,
        image_hw: tuple[int, int],
        geometry: tuple[int, int, tuple[int, int]],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Masks (N, h, w) bool on the un-padded prototype grid, cropped to their boxes (input
        pixels), and their logits there (float32, not cropped)."""
        r0, c0, work_hw = geometry
        crop = proto[:, r0 : r0 + work_hw[0], c0 : c0 + work_hw[1]]
        logits = (coeffs @ crop.reshape(crop.shape[0], -1)).reshape(-1, *work_hw)
        values = logits.cpu().numpy()
        # sigmoid(x) > 0.5; on the CPU numpy's comparison is ~3x faster than torch's
        masks = values > 0
        _crop_to_boxes(masks, boxes, image_hw)
        return masks, values

    def infer(self, rgb: np.ndarray) -> FastSAMPass:
        """The network half of a call: letterbox and forward pass, no decoding."""
        t0 = time.perf_counter()
        image, box = self.network_image(rgb)
        t1 = time.perf_counter()
        preds, proto = self.forward(image)
        t2 = time.perf_counter()
        timings = {"fastsam_pre": (t1 - t0) * 1e3, "fastsam_forward": (t2 - t1) * 1e3}
        return FastSAMPass(preds, proto, box, (int(rgb.shape[0]), int(rgb.shape[1])), timings)

    def decode(self, raw: FastSAMPass) -> MaskSet:
        """The decoding half: NMS, masks and boxes of an :meth:`infer` result, with the
        ``conf`` / ``iou`` / ``max_masks`` in force now. Sets :attr:`last_timings`."""
        t0 = time.perf_counter()
        masks = self.postprocess(raw.preds, raw.proto, raw.box, raw.image_hw)
        self.last_timings = {**raw.timings, "fastsam_post": (time.perf_counter() - t0) * 1e3}
        return masks

    def __call__(self, rgb: np.ndarray) -> MaskSet:
        """Masks for one RGB uint8 image (H, W, 3): :meth:`decode` of :meth:`infer`."""
        return self.decode(self.infer(rgb))


@dataclass(frozen=True)
class FastSAMPass:
    """What :meth:`FastSAMMaskGenerator.infer` hands to :meth:`~FastSAMMaskGenerator.decode`.

    Attributes:
        preds / proto: the network outputs (predictions, prototypes).
        box: the letterbox geometry of the input.
        image_hw: (H, W) of the input image.
        timings: ms of ``fastsam_pre`` and ``fastsam_forward``.
    """

    preds: object
    proto: object
    box: Letterbox
    image_hw: tuple[int, int]
    timings: dict[str, float]


def fastsam_network(
    net: object,
    weights: str,
    backend: str,
    device: DeviceChoice,
    to_tensor: Callable[[np.ndarray], object],
    *,
    threads: int = 0,
    openvino_precision: str = "f32",
) -> Network:
    """The network object that runs a loaded FastSAM module on ``backend``: the module itself
    (``torch``, its input made by ``to_tensor``) or its export, made once per input shape
    (``onnx``, ``openvino``; the ``/ 255`` done inside, :data:`FASTSAM_INPUT`).

    Raises:
        ConfigError: ``backend`` cannot run on ``device`` in this build.
    """
    from pathlib import Path

    from sfs_ros.models import backends

    backends.check_backend(backend, device.device)
    if backend == "torch":
        return TorchFastSAM(net, to_tensor)
    return ExportedTensors(
        backends.ExportedNetwork(
            backend,
            lambda: backends.fastsam_export_module(net),
            f"{Path(weights).stem}-{backends.weights_key(weights)}",
            "images",
            ("preds", "proto"),
            threads=threads,
            openvino_precision=openvino_precision,
            to_input=_network_input,
            normalisation=FASTSAM_INPUT,
        )
    )


def _network_input(rgb: np.ndarray) -> np.ndarray:
    """An RGB uint8 frame already at the network's input size → the exported network's input,
    (1, h, w, 3) uint8."""
    return np.ascontiguousarray(rgb)[None]


def _retina_logit_grid(
    proto: object,
    coeffs: object,
    work_logits: np.ndarray,
    geometry: tuple[int, int, tuple[int, int]],
    image_hw: tuple[int, int],
) -> np.ndarray:
    """The mask logits on the grid ultralytics' ``process_mask_native`` (8.4) upsamples to the
    image in its last bilinear step: the un-padded prototype grid (``work_logits``) when the
    letterbox padding covers whole prototype pixels; otherwise the prototype logits upsampled
    2x or 4x first (its ``f``) and cropped as its ``scale_masks`` crops them."""
    import math

    import torch

    c, mh, mw = proto.shape
    h, w = image_hw
    gain = min(4 * mh / h, 4 * mw / w)
    pad = (4 * mh - max(round(h * gain), 1)) | (4 * mw - max(round(w * gain), 1))
    f = 4 // math.gcd(4, pad | pad // 2)

    def crop(n_h: int, n_w: int) -> tuple[int, int, int, int]:  # scale_masks' crop
        g = min(n_h / h, n_w / w)
        ch, cw = max(round(h * g), 1), max(round(w * g), 1)
        top, left = round((n_h - ch) / 2 - 0.1), round((n_w - cw) / 2 - 0.1)
        return top, top + ch, left, left + cw

    r0, c0, (gh, gw) = geometry
    if f == 1 and crop(mh, mw) == (r0, r0 + gh, c0, c0 + gw):
        return work_logits
    full = (coeffs @ proto.reshape(c, -1)).reshape(1, -1, mh, mw)
    if f > 1:
        full = torch.nn.functional.interpolate(full, scale_factor=f, mode="bilinear")
    top, bottom, left, right = crop(*full.shape[2:])
    return full[0, :, top:bottom, left:right].cpu().numpy()


def _full_box_rule(boxes: object, image_hw: tuple[int, int]) -> object:
    """FastSAM: snap boxes near the border to it; near-full-image boxes become the full box."""
    import torch

    h, w = image_hw
    boxes = boxes.clone()
    boxes[:, 0] = torch.where(boxes[:, 0] < BORDER_SNAP_PX, 0.0, boxes[:, 0])
    boxes[:, 1] = torch.where(boxes[:, 1] < BORDER_SNAP_PX, 0.0, boxes[:, 1])
    boxes[:, 2] = torch.where(boxes[:, 2] > w - BORDER_SNAP_PX, float(w), boxes[:, 2])
    boxes[:, 3] = torch.where(boxes[:, 3] > h - BORDER_SNAP_PX, float(h), boxes[:, 3])
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clamp(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clamp(0, h)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    # IoU with the full image = box area / image area (the box lies inside the image)
    full = area / float(h * w) > FULL_BOX_IOU
    boxes[full] = torch.tensor([0.0, 0.0, float(w), float(h)], device=boxes.device)
    return boxes


def class_agnostic_nms(
    preds: object,
    num_classes: int,
    conf: float,
    iou: float,
    max_det: int,
    *,
    max_nms: int = 30000,
) -> tuple[object, object, object]:
    """Class-agnostic NMS over raw YOLOv8-seg predictions (1, 4+nc+nm, A).

    Same result as ultralytics' ``non_max_suppression(agnostic=True)`` for FastSAM, but
    candidates are filtered on their score row before anything else is transposed or
    copied (with ~100 masks from 8400 anchors that is most of the NMS cost), and only as
    many of the best candidates are suppressed as ``max_det`` needs (:func:`_greedy_nms_first`).

    Returns:
        boxes (n, 4) xyxy network pixels, scores (n,), mask coefficients (n, nm); score order.
    """
    import torch

    pred = preds[0]
    scores = pred[4] if num_classes == 1 else pred[4 : 4 + num_classes].amax(0)
    keep = scores > conf
    pred, scores = pred[:, keep], scores[keep]
    if scores.shape[0] > max_nms:
        top = scores.topk(max_nms).indices
        pred, scores = pred[:, top], scores[top]
    xy, wh = pred[:2].T, pred[2:4].T
    boxes = torch.cat((xy - wh / 2, xy + wh / 2), 1)
    idx = _greedy_nms_first(boxes, scores, iou, max_det)
    return boxes[idx], scores[idx], pred[4 + num_classes :, idx].T


def _greedy_nms_first(boxes: object, scores: object, iou: float, count: int) -> object:
    """The first ``count`` boxes greedy NMS keeps, in score order (indices into ``boxes``).

    Greedy NMS decides each box from the higher-scoring boxes it kept, so NMS over the
    top-scoring candidates alone keeps exactly the leading part of what NMS over all of them
    keeps. The candidates are therefore taken 4 x ``count`` at a time (growing 4x while too few
    survive) instead of suppressing thousands of low-scoring boxes that ``count`` cuts anyway.
    """
    import torchvision

    limit = max(4 * count, 64)
    while scores.shape[0] > limit:
        top = scores.topk(limit).indices  # descending, as NMS visits them
        kept = torchvision.ops.nms(boxes[top], scores[top], iou)
        if kept.shape[0] >= count:
            return top[kept[:count]]
        limit *= 4
    return torchvision.ops.nms(boxes, scores, iou)[:count]


def _crop_to_boxes(masks: np.ndarray, boxes: object, image_hw: tuple[int, int]) -> None:
    """Clear mask pixels whose centres lie outside their box (YOLACT crop), in place.

    A pixel (row r, column c) of mask i stays when ``x1 * sx <= c + 0.5 <= x2 * sx`` and
    ``y1 * sy <= r + 0.5 <= y2 * sy`` (``sx``, ``sy``: working pixels per input pixel; float32
    arithmetic). The bounds are found once per mask on the float32 pixel centres
    (``searchsorted``: the same comparisons), then the rows and columns outside them are cleared
    by slicing, without (N, h, w) comparison grids.
    """
    import torch

    if masks.shape[0] == 0:
        return
    work_hw = masks.shape[1:]
    sy, sx = work_hw[0] / image_hw[0], work_hw[1] / image_hw[1]
    boxes = boxes.float()
    rows = torch.arange(work_hw[0], device=boxes.device, dtype=torch.float32) + 0.5
    cols = torch.arange(work_hw[1], device=boxes.device, dtype=torch.float32) + 0.5
    # first centre >= the low edge, first centre > the high edge
    first_col = torch.searchsorted(cols, boxes[:, 0].contiguous() * sx).tolist()
    end_col = torch.searchsorted(cols, boxes[:, 2].contiguous() * sx, side="right").tolist()
    first_row = torch.searchsorted(rows, boxes[:, 1].contiguous() * sy).tolist()
    end_row = torch.searchsorted(rows, boxes[:, 3].contiguous() * sy, side="right").tolist()
    for mask, top, bottom, left, right in zip(
        masks, first_row, end_row, first_col, end_col, strict=True
    ):
        mask[:top] = False
        mask[bottom:] = False
        mask[:, :left] = False
        mask[:, right:] = False
