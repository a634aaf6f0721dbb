"""The per-frame SFS pipeline: masks → closed-set map → vote → fuse → paint → label map.

``Pipeline.process(rgb)`` is what evaluation and bag labelling call; the ROS node and
``sfs-segment`` call its two halves, ``infer`` and ``finish``, on two threads when
``overlap_frames`` is on. Models
are loaded once in :meth:`Pipeline.from_config` and warmed up; the per-frame path works at the
FastSAM prototype resolution and produces only the final uint16 maps at input resolution.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sfs_ros import edges, fusion, render
from sfs_ros.labels import LabelRegistry
from sfs_ros.models.fastsam import MaskSet
from sfs_ros.models.protocols import MaskGenerator, Segmenter
from sfs_ros.open_vocab.branch import OpenVocabBranch
from sfs_ros.params import (
    LIVE_PARAMS,
    ConfigError,
    SfsConfig,
    as_config,
    validate,
)
from sfs_ros.runtime import LOG
from sfs_ros.weights import RANDOM_WEIGHTS_BANNER

# The parameter groups whose live parameters the pipeline applies (Pipeline.update); the node
# applies the top-level ones (overlay_alpha) itself.
PIPELINE_GROUPS = ("fastsam", "closed_set", "paint", "open_vocab")


@dataclass
class SegmentationResult:
    """Everything one frame produced.

    Attributes:
        label_map: (H, W) uint16 class ids at input resolution (0 = unidentified).
        label_work: the same at the working resolution. Unless ``edges_at_input``,
            ``label_map`` is its nearest-neighbour resize (:func:`sfs_ros.render.resize_labels`)
            and outputs that only need the ids or their colours start from it.
        instance_work: (h, w) uint16 at the working resolution, 1 + index of the mask shown
            at each pixel, 0 = none; ``instance_map`` is the same at input resolution (decided
            there with ``edges_at_input``, else resized on first access).
        masks: the FastSAM masks (working resolution) with boxes (xyxy, input pixels) and scores.
        mask_labels: (N,) uint16 final label of each mask.
        closed_labels: (N,) label ids voted by the closed set; purity: (N,) their vote share.
        timings: milliseconds per stage plus ``total``.
        open_vocab: the open-vocabulary scores fused into this frame (None when the branch is
            off); labels come from the mask tracks, computed on this or an earlier frame.
    """

    label_map: np.ndarray
    label_work: np.ndarray
    instance_work: np.ndarray
    masks: MaskSet
    mask_labels: np.ndarray
    closed_labels: np.ndarray
    purity: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    open_vocab: fusion.OpenVocabScores | None = None
    input_instances: np.ndarray | None = field(default=None, repr=False)
    """(H, W) uint16 instance map decided at input resolution (``fastsam.mask_resolution:
    edges``), else None."""
    _instance_map: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def edges_at_input(self) -> bool:
        """The label and instance maps were decided at input resolution along their edges
        (:mod:`sfs_ros.edges`), not resized from the working resolution."""
        return self.input_instances is not None

    @property
    def instance_map(self) -> np.ndarray:
        """(H, W) uint16 instance ids at input resolution (resized once, on first access,
        unless decided there)."""
        if self.input_instances is not None:
            return self.input_instances
        if self._instance_map is None:
            self._instance_map = render.resize_labels(self.instance_work, self.label_map.shape)
        return self._instance_map

    @property
    def color_labels(self) -> np.ndarray:
        """The smallest label map whose nearest resize is ``label_map``: ``label_work``, or
        ``label_map`` itself when it was decided at input resolution."""
        return self.label_map if self.edges_at_input else self.label_work

    def label_ids(self) -> np.ndarray:
        """The ids on ``label_map``, ascending; counted on the smaller ``label_work`` whenever
        the resize shows every one of its pixels
        (:func:`sfs_ros.render.resize_keeps_every_pixel`)."""
        source = self.label_map
        small = self.color_labels
        if render.resize_keeps_every_pixel(small.shape, self.label_map.shape):
            source = small
        # a histogram is ~3x faster than np.unique's sort
        return np.flatnonzero(np.bincount(source.ravel()))


@dataclass(frozen=True)
class NetworkPass:
    """What :meth:`Pipeline.infer` hands to :meth:`Pipeline.finish`: one frame's network
    outputs, not yet decoded.

    Attributes:
        rgb: the input image.
        masks: the mask generator's :meth:`~sfs_ros.models.protocols.MaskGenerator.infer`
            result.
        closed: each closed-set model's :meth:`~sfs_ros.models.protocols.Segmenter.infer`
            result, in model order.
        timings: ms of the network passes (``fastsam``, ``closed_set``).
        sequence: the image sequence (camera) of the frame: open-vocabulary mask tracks are
            kept per sequence.
    """

    rgb: np.ndarray
    masks: Any
    closed: list[Any]
    timings: dict[str, float]
    sequence: str = ""


class _Stopwatch:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = (now - self._last) * 1e3
        self._last = now


class Pipeline:
    """Semantic-Fast-SAM on one RGB frame at a time (thread-safe for one caller at a time).

    A frame is :meth:`infer` (the network passes) then :meth:`finish` (decode, vote, fuse,
    paint); :meth:`process` runs both. The two halves may run on two threads for consecutive
    frames (the node's ``overlap_frames``).

    ``config`` is the configuration the components were built with; the pipeline reads its
    ``closed_set.min_purity`` and ``paint`` group per frame and keeps it current as live
    parameters change (:meth:`update`). With an open-vocabulary branch, the branch's own
    ``open_vocab`` group (``branch.settings``) is the one in force.
    """

    LIVE_KEYS: tuple[str, ...] = tuple(
        name for name in LIVE_PARAMS if name.partition(".")[0] in PIPELINE_GROUPS
    )
    """The live parameters :meth:`update` applies (from the configuration tree)."""

    def __init__(
        self,
        mask_generator: MaskGenerator,
        segmenters: Sequence[Segmenter],
        registry: LabelRegistry,
        *,
        config: SfsConfig | None = None,
        random_weights: Sequence[str] = (),
        device: str = "cpu",
        backend: str = "torch",
        open_vocab: OpenVocabBranch | None = None,
    ) -> None:
        if not segmenters:
            raise ValueError("at least one closed-set segmenter is needed")
        self.mask_generator = mask_generator
        self.segmenters = list(segmenters)
        self.registry = registry
        config = SfsConfig() if config is None else config
        if open_vocab is not None:
            config = replace(config, open_vocab=open_vocab.settings)
        self.config = config
        self.random_weights = tuple(random_weights)
        self.device = device
        self.backend = backend  # the backend in use (``auto`` resolved at start)
        self._luts = [registry.closed_set_lut(i) for i in range(len(self.segmenters))]
        # Open-vocabulary branch (None when open_vocab.enabled was false at start). With the
        # every_frame schedule the CLIP pass runs inline on every frame (offline: sfs-segment,
        # sfs-eval); otherwise on the branch's background worker, at most open_vocab.rate_hz
        # times a second (the node).
        self.open_vocab = open_vocab
        # _lock: finish() and update() (the live parameters); _infer_lock: infer(), which
        # reads no live parameter and may overlap the previous frame's finish().
        self._lock = threading.Lock()
        self._infer_lock = threading.Lock()
        # parallel_networks: the closed-set models run on this thread while FastSAM runs on
        # the caller's (both backends release the GIL while their network runs).
        self._closed_set_pool = None
        if config.parallel_networks:
            self._closed_set_pool = ThreadPoolExecutor(1, thread_name_prefix="sfs-closed-set")

    # --------------------------------------------------------------------------- building
    @classmethod
    def from_config(cls, config: SfsConfig | Mapping[str, Any], warmup: bool = True) -> Pipeline:
        """Load every model named by a config: the typed tree, or the dotted names of
        :func:`sfs_ros.params.load_config`.

        With ``open_vocab.schedule`` every_frame (:meth:`SfsConfig.offline`: sfs-segment,
        sfs-eval) the open-vocabulary branch runs inline on every frame, so its labels land in
        that frame's output and do not depend on timing; call :meth:`reset_sequence` between
        unrelated images. Otherwise (the node) it runs on a background thread at most
        ``open_vocab.rate_hz`` times a second.
        """
        from sfs_ros.models.backends import (
            check_backend,
            network_precisions,
            resolve_backend,
            set_cache_limits,
            set_int8_calibration,
        )
        from sfs_ros.models.closed_set import load_segmenter
        from sfs_ros.models.fastsam import FastSAMMaskGenerator
        from sfs_ros.runtime import DeviceChoice, select_device, set_torch_threads
        from sfs_ros.weights import resolve_fastsam_weights

        config = as_config(config)
        allow_random = config.allow_random_weights
        device = select_device(config.device, config.half)
        backend, half, why = resolve_backend(config.backend, device.device, config.half)
        if half != device.half and device.device.startswith("cuda"):
            device = DeviceChoice(device.device, half, device.reason)
        LOG.info(
            "device %s (%s); backend %s%s (%s)",
            device.device,
            device.reason,
            backend,
            " fp16" if device.half else "",
            why,
        )
        check_backend(backend, device.device)
        precisions = network_precisions(
            backend, config.openvino_precision, config.open_vocab.enabled
        )
        set_cache_limits(config.backend_cache.max_shapes, config.backend_cache.max_mb)
        set_int8_calibration(config.openvino_int8_calibration)
        set_torch_threads(config.num_threads)
        parallel = config.parallel_networks
        threads = config.num_threads or (os.cpu_count() or 1)
        # With parallel networks each exported network gets its share of the threads.
        fastsam_threads = max(1, threads // 2) if parallel else config.num_threads
        closed_threads = max(1, threads - threads // 2) if parallel else config.num_threads
        weights, fastsam_random = resolve_fastsam_weights(config.fastsam.model, allow_random)
        masker = FastSAMMaskGenerator(
            weights,
            device,
            imgsz=config.fastsam.imgsz,
            conf=config.fastsam.conf,
            iou=config.fastsam.iou,
            max_masks=config.fastsam.max_masks,
            mask_resolution=config.fastsam.mask_resolution,
            backend=backend,
            threads=fastsam_threads,
            openvino_precision=precisions.fastsam,
            is_random=fastsam_random,
        )
        model_ids = [m.strip() for m in config.closed_set.model.split(",") if m.strip()]
        vocab_names = [v.strip() for v in config.closed_set.vocabulary.split(",")]
        if len(vocab_names) == 1:
            vocab_names *= len(model_ids)
        if len(vocab_names) != len(model_ids):
            raise ConfigError(
                f"closed_set.vocabulary names {len(vocab_names)} vocabularies for "
                f"{len(model_ids)} closed_set.model entries"
            )
        segmenters = [
            load_segmenter(
                mid,
                device,
                voc,
                allow_random,
                backend=backend,
                threads=closed_threads,
                openvino_precision=precisions.closed_set,
                min_confidence=config.closed_set.min_confidence,
            )
            for mid, voc in zip(model_ids, vocab_names, strict=True)
        ]
        parts: list[tuple[str, str, MaskGenerator | Segmenter]] = [
            ("FastSAM", "fastsam.model", masker),
            *(("closed-set model", "closed_set.model", s) for s in segmenters),
        ]
        random_parts = [(what, param) for what, param, part in parts if part.is_random]
        for what, param in random_parts:
            LOG.warning(RANDOM_WEIGHTS_BANNER.format(what=what, param=param))
        registry = LabelRegistry(
            [s.vocabulary for s in segmenters], max_classes=config.legend.max_classes
        )
        open_vocab = None
        if config.open_vocab.enabled:
            from sfs_ros.open_vocab import OpenVocabBranch

            open_vocab = OpenVocabBranch.from_config(config, registry, device.device)
            if open_vocab.scorer.is_random:  # ClipScorer.load already logged the banner
                random_parts.append(("CLIP", "open_vocab.pretrained"))
            captioner = open_vocab.captioner
            if captioner is not None and captioner.is_random:  # banner logged at load
                random_parts.append(("captioner", "open_vocab.captioner"))
        pipeline = cls(
            masker,
            segmenters,
            registry,
            config=config,
            random_weights=[what for what, _ in random_parts],
            device=device.device,
            backend=backend,
            open_vocab=open_vocab,
        )
        if warmup:
            pipeline.warmup()
        return pipeline

    def warmup(self) -> None:
        """Run the per-frame models once on a blank frame, which usually yields no mask at all
        (every stage accepts that). The open-vocabulary worker is not fed the blank frame: its
        first real pass encodes the vocabulary."""
        branch, self.open_vocab = self.open_vocab, None
        try:
            self.process(np.zeros((480, 640, 3), np.uint8))
        finally:
            self.open_vocab = branch

    # --------------------------------------------------------------------------- settings
    @property
    def min_purity(self) -> float:
        """``closed_set.min_purity`` in force."""
        return self.config.closed_set.min_purity

    @property
    def paint_order(self) -> str:
        """``paint.order`` in force."""
        return self.config.paint.order

    @property
    def uncovered(self) -> str:
        """``paint.uncovered`` in force."""
        return self.config.paint.uncovered

    def update(self, name: str, value: Any) -> None:
        """Apply a live parameter (validated; ConfigError when not live or out of range).

        The changed group of :attr:`config` is handed to the component that reads it through
        its ``apply`` (the mask generator, each closed-set segmenter, the open-vocabulary
        branch); ``closed_set.min_purity`` and ``paint`` are read by :meth:`process` itself.
        """
        if name not in self.LIVE_KEYS:
            raise ConfigError(f"'{name}' cannot be changed while the pipeline runs")
        value = validate(name, value)
        group = name.partition(".")[0]
        if group == "open_vocab" and self.open_vocab is None:
            if name == "open_vocab.enabled" and not value:
                return
            raise ConfigError(
                f"{name}: the open-vocabulary branch was not loaded at start "
                "(open_vocab.enabled was false); restart with open_vocab.enabled:=true"
            )
        with self._lock:
            if self.open_vocab is not None:  # the branch's group is the one in force
                self.config = replace(self.config, open_vocab=self.open_vocab.settings)
            self.config = self.config.with_values({name: value})
            if group == "fastsam":
                self.mask_generator.apply(self.config.fastsam)
            elif group == "closed_set":
                for segmenter in self.segmenters:
                    segmenter.apply(self.config.closed_set)
            elif group == "open_vocab":
                self.open_vocab.apply(self.config.open_vocab)

    # --------------------------------------------------------------------------- per frame
    def process(self, rgb: np.ndarray, sequence: str = "") -> SegmentationResult:
        """Segment and label one RGB uint8 image (H, W, 3): ``finish(infer(rgb, sequence))``."""
        return self.finish(self.infer(rgb, sequence))

    def infer(self, rgb: np.ndarray, sequence: str = "") -> NetworkPass:
        """The first half of a frame: the network passes (FastSAM and every closed-set model).
        ``sequence`` names the camera (image sequence) the frame belongs to: the open
        vocabulary carries labels only between frames of the same sequence.

        One caller at a time; it may run while :meth:`finish` handles the previous frame on
        another thread (the node's ``overlap_frames``): it reads no live parameter.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
        if rgb.shape[0] == 0 or rgb.shape[1] == 0:
            raise ValueError(f"empty image {rgb.shape}")
        with self._infer_lock:
            clock = _Stopwatch()
            pending = None
            if self._closed_set_pool is not None:
                pending = self._closed_set_pool.submit(self._closed_set_passes, rgb)
            masks = self.mask_generator.infer(rgb)
            clock.lap("fastsam")
            # with parallel networks "closed_set" is the wait after FastSAM
            closed = pending.result() if pending else self._closed_set_passes(rgb)
            clock.lap("closed_set")
            return NetworkPass(rgb, masks, closed, clock.timings, sequence)

    def finish(self, net: NetworkPass) -> SegmentationResult:
        """The second half of a frame: decode the masks and class maps of :meth:`infer`'s
        network passes, vote, fuse (with the open vocabulary) and paint, with the live
        parameters in force now. ``timings`` add both halves' stages (``total``: their sum)."""
        rgb = net.rgb
        with self._lock:
            clock = _Stopwatch()
            masks = self.mask_generator.decode(net.masks)
            clock.lap("fastsam")
            work_hw = masks.work_hw
            # fastsam.mask_resolution edges: class maps decided once on each logit grid, read
            # at the working and the input resolution
            samplers = _class_samplers(self.segmenters, net.closed, masks.logits is not None)
            class_maps = self._class_maps(net.closed, work_hw, samplers)  # → registry ids
            clock.lap("closed_set")
            votes = []
            num_ids = len(self.registry)
            for ids in class_maps:
                votes.append(fusion.vote(masks.masks, ids, num_ids))
            best = _best_votes(votes)
            open_scores = None
            branch = self.open_vocab
            if branch is not None and branch.enabled:
                clock.lap("vote")
                open_scores = branch.frame(
                    rgb, masks.masks, masks.boxes, best.labels, net.sequence
                )
                clock.lap("open_vocab")
                mask_labels = fusion.fuse(
                    best, self.min_purity, open_scores, branch.settings.threshold
                )
            else:
                mask_labels = fusion.fuse(best, self.min_purity)
            clock.lap("vote_fuse")
            fallback = class_maps[0]
            if self.uncovered == "unidentified":
                fallback = np.zeros(work_hw, np.uint16)
            label_work, inst_work = fusion.paint(
                masks.masks,
                mask_labels,
                fallback,
                areas=masks.areas,
                order=self.paint_order,
                scores=masks.scores,
            )
            input_instances = None
            if masks.logits is not None:  # fastsam.mask_resolution: edges
                clock.lap("paint")
                label_map, input_instances = self._paint_edges_at_input(
                    net, masks, mask_labels, inst_work, samplers[0]
                )
                clock.lap("edges")
            else:
                label_map = render.resize_labels(label_work, rgb.shape[:2])
                clock.lap("paint")
            timings = clock.timings
            for stage, ms in net.timings.items():
                timings[stage] = timings.get(stage, 0.0) + ms
            timings["total"] = sum(timings.values())
            return SegmentationResult(
                label_map,
                label_work,
                inst_work,
                masks,
                mask_labels,
                best.labels.astype(np.uint16),
                best.purity,
                timings,
                open_scores,
                input_instances,
            )

    def _paint_edges_at_input(
        self,
        net: NetworkPass,
        masks: MaskSet,
        mask_labels: np.ndarray,
        inst_work: np.ndarray,
        sampler: Callable[[tuple[int, int]], np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The label and instance maps at input resolution: the working paint, with the pixels
        along mask, box and class edges decided there (:mod:`sfs_ros.edges`). Pixels no mask
        covers take the first closed-set model's class at input resolution (``sampler``, else
        its ``class_map`` at that size)."""
        image_hw = masks.image_hw
        top_first = fusion.stack_order(masks.areas, masks.scores, self.paint_order)
        grid_instances = masks.grid_instances(top_first, inst_work)
        instances = edges.sharpen_masks(
            grid_instances, masks.logits, masks.crop_boxes, top_first, image_hw
        )
        label_lut = np.zeros(len(mask_labels) + 1, np.uint16)
        label_lut[1:] = mask_labels
        labels = label_lut[instances]
        uncovered = instances == 0
        if self.uncovered == "closed_set" and uncovered.any():
            if sampler is not None:
                index = sampler(image_hw)
            else:
                index = self.segmenters[0].class_map(net.closed[0], image_hw)
            ids = self._luts[0][index]
            ids[index < 0] = 0  # below closed_set.min_confidence: unidentified
            labels[uncovered] = ids[uncovered]
        return labels, instances

    def reset_sequence(self) -> None:
        """The next frame starts a new sequence (another image or video): open-vocabulary mask
        tracks are forgotten so no label travels between unrelated frames."""
        if self.open_vocab is not None:
            self.open_vocab.reset_sequence()

    def _closed_set_passes(self, rgb: np.ndarray) -> list[Any]:
        """Every closed-set model's network pass (:meth:`Segmenter.infer`)."""
        return [segmenter.infer(rgb) for segmenter in self.segmenters]

    def _class_maps(
        self,
        passes: Sequence[Any],
        out_hw: tuple[int, int],
        samplers: Sequence[Callable[[tuple[int, int]], np.ndarray] | None],
    ) -> list[np.ndarray]:
        """Every closed-set model's class map at ``out_hw``, in registry label ids (from its
        sampler where it has one)."""
        maps = []
        for segmenter, lut, raw, sampler in zip(
            self.segmenters, self._luts, passes, samplers, strict=True
        ):
            index = sampler(out_hw) if sampler is not None else segmenter.class_map(raw, out_hw)
            ids = lut[index]
            ids[index < 0] = 0  # below closed_set.min_confidence: unidentified
            maps.append(ids)
        return maps

    def legend_dict(self) -> dict:
        """The current legend (``legend.json`` document)."""
        return self.registry.legend_dict()

    def open_vocab_stats(self) -> dict[str, Any] | None:
        """Diagnostics of the open-vocabulary branch (passes, errors, last pass ms, label age),
        or None when it is not loaded."""
        return None if self.open_vocab is None else self.open_vocab.stats()

    def close(self) -> None:
        """Stop background threads (the open-vocabulary worker). Idempotent."""
        if self.open_vocab is not None:
            self.open_vocab.close()
        if self._closed_set_pool is not None:
            self._closed_set_pool.shutdown(wait=True)


def _class_samplers(
    segmenters: Sequence[Segmenter], passes: Sequence[Any], wanted: bool
) -> list[Callable[[tuple[int, int]], np.ndarray] | None]:
    """Each segmenter's ``class_sampler`` of its pass when ``wanted`` (None for a segmenter
    without one: its ``class_map`` is computed at each size instead)."""
    out: list[Callable[[tuple[int, int]], np.ndarray] | None] = []
    for segmenter, raw in zip(segmenters, passes, strict=True):
        make = getattr(segmenter, "class_sampler", None) if wanted else None
        out.append(None if make is None else make(raw))
    return out


def _best_votes(votes: list[fusion.MaskVotes]) -> fusion.MaskVotes:
    """Several closed-set models: per mask, the vote with the highest purity wins."""
    if len(votes) == 1:
        return votes[0]
    purity = np.stack([v.purity for v in votes])
    pick = purity.argmax(axis=0)
    cols = np.arange(purity.shape[1])
    labels = np.stack([v.labels for v in votes])[pick, cols]
    return fusion.MaskVotes(labels=labels, purity=purity[pick, cols], areas=votes[0].areas)
