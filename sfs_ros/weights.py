"""Where model weights come from: local files, an explicit download, or (opt-in) random weights.

Rules (README.md, "Weights"; docs/architecture.md, "Caches"): a missing file offline is a clear
error naming the file and the parameter that points at it; a download happens only for a known
release asset / hub id, with a log line saying what and where; random weights are only used
with ``allow_random_weights`` and are announced loudly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from sfs_ros.errors import (  # re-exported: defined with the other errors
    UnusableWeightsError,
    WeightsNotFoundError,
)
from sfs_ros.runtime import LOG, import_ultralytics

RANDOM_WEIGHTS_BANNER = (
    "RANDOM WEIGHTS IN USE for {what}: outputs are NOT meaningful segmentations "
    "(allow_random_weights is on; point {param} at real weights to turn this off)"
)

# FastSAM checkpoints are YOLOv8-seg networks with one class; the size letter picks the yaml.
_FASTSAM_ARCHS = {"s": "yolov8s-seg.yaml", "x": "yolov8x-seg.yaml", "n": "yolov8n-seg.yaml"}
# SegFormer variants (hidden sizes, depths, decoder size) from the SegFormer paper / HF configs.
_SEGFORMER_VARIANTS = {
    "b0": ([32, 64, 160, 256], [2, 2, 2, 2], 256),
    "b1": ([64, 128, 320, 512], [2, 2, 2, 2], 256),
    "b2": ([64, 128, 320, 512], [3, 4, 6, 3], 768),
    "b3": ([64, 128, 320, 512], [3, 4, 18, 3], 768),
    "b4": ([64, 128, 320, 512], [3, 8, 27, 3], 768),
    "b5": ([64, 128, 320, 512], [3, 6, 40, 3], 768),
}


def hub_offline() -> None:
    """Put huggingface_hub in offline mode for this process (it reads HF_HUB_OFFLINE once, at
    import): with SFS_OFFLINE set, a cache lookup must never turn into minutes of retries."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True


def weights_offline() -> bool:
    """True when downloads are off (SFS_OFFLINE, HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE set)."""
    return any(
        os.environ.get(var, "").lower() in {"1", "true", "yes", "on"}
        for var in ("SFS_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def cache_dir() -> Path:
    """sfs_ros' own cache (exported backends, random-weight models): $SFS_CACHE_DIR or ~/.cache."""
    root = os.environ.get("SFS_CACHE_DIR") or Path.home() / ".cache" / "sfs_ros"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _missing_hint(param: str) -> str:
    return (
        f"Point the parameter '{param}' at a local copy (CLI: --set {param}=/path/to/it), "
        "or run with allow_random_weights:=true (CLI: --allow-random-weights) to test the "
        "pipeline with random weights."
    )


# --------------------------------------------------------------------------------- FastSAM
def fastsam_arch_yaml(name: str) -> str:
    """The ultralytics model yaml for a FastSAM checkpoint name (FastSAM-s.pt -> yolov8s-seg)."""
    match = re.search(r"fastsam-?([nsx])", Path(name).stem.lower())
    return _FASTSAM_ARCHS[match.group(1) if match else "s"]


def is_explicit_path(name: str) -> bool:
    """True when ``name`` names a file by path (absolute, ``~``, ``./`` or with a folder).

    A bare file name such as ``FastSAM-s.pt`` is a release name: it is searched only in the
    documented weights folders (:func:`fastsam_search_dirs`), never in the working directory,
    so a file planted there is never loaded by accident.
    """
    return (
        os.path.isabs(name)
        or name.startswith(("~", "./", "../"))
        or os.sep in name
        or (os.altsep is not None and os.altsep in name)
    )


def _own_weight_dirs() -> list[Path]:
    """sfs_ros's own FastSAM folders, in order: ``$SFS_WEIGHTS_DIR`` (when set), then the
    sfs_ros cache (``<cache>/weights``)."""
    dirs = []
    if env_dir := os.environ.get("SFS_WEIGHTS_DIR"):
        dirs.append(Path(env_dir).expanduser())
    dirs.append(cache_dir() / "weights")
    return [d.absolute() for d in dirs]


def fastsam_search_dirs() -> list[Path]:
    """Folders a bare FastSAM name is looked up in, in order.

    ``$SFS_WEIGHTS_DIR``, the sfs_ros cache (``<cache>/weights``) and ultralytics' weights
    folder. The working directory is deliberately not one of them.
    """
    import_ultralytics()
    from ultralytics.utils import SETTINGS

    return [*_own_weight_dirs(), Path(SETTINGS["weights_dir"]).expanduser().absolute()]


def fastsam_download_dir() -> Path:
    """Where a missing FastSAM release is downloaded: the first of sfs_ros's own folders
    (``$SFS_WEIGHTS_DIR``, else ``<cache>/weights``). Not ultralytics' weights folder:
    ultralytics records that one relative to the working directory of its first run, so it
    can be any project's folder."""
    return _own_weight_dirs()[0]


def resolve_fastsam_weights(name: str, allow_random: bool = False) -> tuple[str, bool]:
    """Return ``(absolute path, is_random)`` for the FastSAM weights ``name``.

    ``name`` is an explicit path (see :func:`is_explicit_path`), or a release asset name such
    as ``FastSAM-s.pt`` that is looked up in :func:`fastsam_search_dirs` and then downloaded
    into :func:`fastsam_download_dir` (online only). Exported backends (``.onnx``,
    ``*_openvino_model/``, ``.engine``) are accepted as paths. Exactly one log line says what
    happened when the file is not on disk.
    """
    if is_explicit_path(name):
        path = Path(name).expanduser().absolute()
        if path.exists():
            return str(path), False
        candidates = [path]
    else:
        candidates = [d / name for d in fastsam_search_dirs()]
        for candidate in candidates:
            if candidate.exists():
                return str(candidate), False
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES, attempt_download_asset

    looked = ", ".join(str(c.parent if len(candidates) > 1 else c) for c in candidates)
    base = Path(name).name
    if is_explicit_path(name):
        reason = "no such file"
    elif base not in GITHUB_ASSETS_NAMES:
        reason = "not a known FastSAM release asset, so it cannot be downloaded"
    elif weights_offline():
        reason = "downloads are off (SFS_OFFLINE/HF_HUB_OFFLINE set)"
    else:
        target = fastsam_download_dir() / base
        LOG.info(
            "%s not found (looked in %s); trying to download it into %s",
            base,
            looked,
            target.parent,
        )
        saved = os.environ.pop("YOLO_OFFLINE", None)
        try:
            downloaded = attempt_download_asset(target)
            if Path(downloaded).exists():
                LOG.info("downloaded %s", downloaded)
                return str(Path(downloaded).absolute()), False
            reason = "the download produced no file"
        except Exception as exc:  # network errors come in many types; reported below
            reason = f"the download failed: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        finally:
            if saved is not None:
                os.environ["YOLO_OFFLINE"] = saved
    if allow_random:
        LOG.warning(
            "%s not found (looked in %s; %s); using random weights because "
            "allow_random_weights is on",
            name,
            looked,
            reason,
        )
        return str(build_random_fastsam(base)), True
    raise WeightsNotFoundError(
        f"FastSAM weights '{name}' not found (looked in: {looked}; {reason}). "
        + _missing_hint("fastsam.model")
    )


def open_fastsam(weights: str) -> object:
    """``ultralytics.FastSAM(weights)`` with restricted (``weights_only``) unpickling.

    Any failure to load becomes one :class:`UnusableWeightsError` line naming the file and
    ``fastsam.model``, instead of ultralytics' traceback and its generic hints. NaN/inf
    weights are refused here, NaN/inf outputs on the first (warm-up) frame by a one-shot
    check (:func:`sfs_ros.weight_checks.guard_first_output`).
    """
    import_ultralytics()
    from ultralytics import FastSAM

    try:
        wrapper = FastSAM(weights)
    except Exception as exc:  # ultralytics raises TypeError/RuntimeError/KeyError/...; reworded
        detail = " ".join(str(exc).split()) or type(exc).__name__
        detail = detail.replace("ERROR ❌️ ", "").split("Recommended fixes")[0].split(" Use an")[0]
        raise UnusableWeightsError(
            f"fastsam.model: '{weights}' cannot be loaded as FastSAM weights "
            f"({type(exc).__name__}: {detail.strip()[:300]}). Point fastsam.model at a genuine "
            "FastSAM / YOLOv8-seg checkpoint (.pt, .onnx or *_openvino_model/)."
        ) from exc
    from sfs_ros.weight_checks import check_finite_weights, guard_first_output

    net = getattr(wrapper, "model", None)
    if hasattr(net, "named_parameters"):
        check_finite_weights(net, "fastsam.model", weights)
        if hasattr(net, "fuse"):  # fuse() runs a profiling forward the first time: before the
            net.fuse(verbose=False)  # warm-up guard, so that the guard sees the warm-up frame
        guard_first_output(net, "fastsam.model", weights)
    return wrapper


def build_random_fastsam(
    name: str = "FastSAM-s.pt", out: Path | None = None, seed: int = 0
) -> Path:
    """Build the FastSAM architecture of ``name`` with random weights and save it as a ``.pt``.

    The file is saved through an ultralytics ``YOLO`` object, exactly like a released
    checkpoint, so it loads through ``FastSAM(path)``. Cached under :func:`cache_dir` with a
    digest sidecar (see :mod:`sfs_ros.cache_files`): a damaged cached file is moved aside and
    rebuilt; concurrent builders each use their own temporary file.
    """
    import torch

    from sfs_ros import cache_files

    import_ultralytics()
    from ultralytics import YOLO
    from ultralytics.nn.tasks import SegmentationModel

    yaml_name = fastsam_arch_yaml(name)
    out = out or cache_dir() / "random" / f"{Path(name).stem}.random-seed{seed}.pt"
    problem = cache_files.verify_file(out)
    if problem is None:
        return out
    if out.exists():
        cache_files.move_aside(out, problem)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    wrapper = YOLO(yaml_name, task="segment", verbose=False)
    wrapper.model = SegmentationModel(yaml_name, nc=1, verbose=False)
    # Released checkpoints carry their training args; ultralytics reads the task from them.
    wrapper.model.args = {"task": "segment", "imgsz": 1024}
    wrapper.model.task = "segment"
    wrapper.ckpt = {"train_args": {"task": "segment", "imgsz": 1024}}
    tmp = cache_files.temp_sibling(out)
    try:
        wrapper.save(str(tmp))
        cache_files.publish_file(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# ---------------------------------------------------------------------- transformers models
def _begin_dir_entry(out: Path) -> Path | None:
    """None when the cached model folder ``out`` is complete and intact; else a fresh
    per-process folder to build it in (a damaged ``out`` is moved aside with one line)."""
    from sfs_ros import cache_files

    problem = cache_files.verify_dir(out)
    if problem is None:
        return None
    if out.exists():
        cache_files.move_aside(out, problem)
    return cache_files.new_temp_dir(out)


@contextlib.contextmanager
def _finish_dir_entry(tmp: Path, out: Path) -> Iterator[None]:
    """Build inside ``tmp``; on success mark it complete and rename it to ``out``."""
    from sfs_ros import cache_files

    try:
        yield
        cache_files.publish_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def hub_model_type(model_id: str) -> str:
    """Guess the architecture family of a hub id or directory name (for random weights)."""
    low = model_id.lower()
    for family in ("segformer", "mask2former", "oneformer"):
        if family in low:
            return family
    return "unknown"


def build_random_segformer(
    model_id: str,
    id2label: dict[int, str],
    out: Path | None = None,
    seed: int = 0,
    input_size: int = 512,
) -> Path:
    """Save a SegFormer of ``model_id``'s size (b0..b5) with random weights via save_pretrained.

    The directory also gets a preprocessor config, so it loads exactly like a hub checkpoint.
    """
    import torch
    from transformers import (
        SegformerConfig,
        SegformerForSemanticSegmentation,
        SegformerImageProcessor,
    )

    match = re.search(r"segformer-?(b[0-5])", model_id.lower())
    variant = match.group(1) if match else "b0"
    out = out or cache_dir() / "random" / f"segformer-{variant}-{len(id2label)}-seed{seed}"
    if (tmp := _begin_dir_entry(out)) is None:
        return out
    hidden, depths, decoder = _SEGFORMER_VARIANTS[variant]
    config = SegformerConfig(
        hidden_sizes=hidden,
        depths=depths,
        decoder_hidden_size=decoder,
        num_labels=len(id2label),
        id2label={int(k): v for k, v in id2label.items()},
        label2id={v: int(k) for k, v in id2label.items()},
    )
    torch.manual_seed(seed)
    model = SegformerForSemanticSegmentation(config).eval()
    with _finish_dir_entry(tmp, out):
        model.save_pretrained(tmp)
        SegformerImageProcessor(size={"height": input_size, "width": input_size}).save_pretrained(
            tmp
        )
    return out


def build_random_mask2former(
    id2label: dict[int, str], out: Path | None = None, seed: int = 0, shortest_edge: int = 384
) -> Path:
    """Save a Mask2Former (transformers' default Swin backbone) with random weights.

    The image processor is saved beside it (``shortest_edge`` resize), so the directory loads
    through ``AutoModelForUniversalSegmentation`` / ``AutoProcessor`` like a hub checkpoint.
    """
    import torch
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessor,
    )

    out = out or cache_dir() / "random" / f"mask2former-{len(id2label)}-seed{seed}"
    if (tmp := _begin_dir_entry(out)) is None:
        return out
    config = Mask2FormerConfig(
        num_labels=len(id2label),
        id2label={int(k): v for k, v in id2label.items()},
        label2id={v: int(k) for k, v in id2label.items()},
    )
    torch.manual_seed(seed)
    model = Mask2FormerForUniversalSegmentation(config).eval()
    size = {"shortest_edge": shortest_edge, "longest_edge": shortest_edge * 4 // 3}
    with _finish_dir_entry(tmp, out):
        model.save_pretrained(tmp)
        Mask2FormerImageProcessor(size=size).save_pretrained(tmp)
    return out


def _tiny_clip_tokenizer(folder: Path) -> object:
    """A CLIP BPE tokenizer made offline from letters alone (no merges), for random OneFormers.

    OneFormer's processor tokenizes its task prompt ("the task is semantic") with a CLIP
    tokenizer, whose real vocabulary is a hub download. Letters + end-of-word letters + the two
    specials spell any lower-case prompt, which is all a random-weight model needs.
    """
    import json

    from transformers import CLIPTokenizer

    letters = list("abcdefghijklmnopqrstuvwxyz")
    tokens = [*letters, *(c + "</w>" for c in letters), "<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))


def build_random_oneformer(
    id2label: dict[int, str], out: Path | None = None, seed: int = 0, shortest_edge: int = 512
) -> Path:
    """Save a OneFormer (transformers' default Swin backbone) with random weights.

    Model, image processor and processor are transformers' own classes saved with
    save_pretrained, so the directory loads through ``AutoModelForUniversalSegmentation`` /
    ``AutoProcessor`` like ``shi-labs/oneformer_*``; only the tokenizer's vocabulary is tiny
    (:func:`_tiny_clip_tokenizer`). Cached under :func:`cache_dir`.
    """
    import torch
    from transformers import (
        OneFormerConfig,
        OneFormerForUniversalSegmentation,
        OneFormerImageProcessor,
        OneFormerProcessor,
    )

    out = out or cache_dir() / "random" / f"oneformer-{len(id2label)}-seed{seed}"
    if (tmp := _begin_dir_entry(out)) is None:
        return out
    with _finish_dir_entry(tmp, out):
        tokenizer = _tiny_clip_tokenizer(tmp)
        config = OneFormerConfig(
            num_labels=len(id2label),
            id2label={int(k): v for k, v in id2label.items()},
            label2id={v: int(k) for k, v in id2label.items()},
            text_encoder_vocab_size=len(tokenizer),
        )
        torch.manual_seed(seed)
        model = OneFormerForUniversalSegmentation(config).eval()
        model.save_pretrained(tmp)
        image_processor = OneFormerImageProcessor(
            size={"shortest_edge": shortest_edge, "longest_edge": shortest_edge * 2},
            num_text=config.num_queries - config.text_encoder_n_ctx,
        )
        OneFormerProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            max_seq_length=config.text_encoder_context_length,
            task_seq_length=config.text_encoder_context_length,
        ).save_pretrained(tmp)
    return out


def resolve_hf_model(
    model_id: str, id2label: dict[int, str], allow_random: bool = False
) -> tuple[str, bool]:
    """Return ``(id_or_dir, is_random)`` for a transformers segmentation model.

    A local directory is used as is. A hub id is used when it is in the local hub cache or can
    be downloaded (online); otherwise a random-weight model of the same family is built when
    allowed, and a :class:`WeightsNotFoundError` is raised when not.
    """
    path = Path(model_id).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise WeightsNotFoundError(f"'{model_id}' is a directory without config.json")
        return str(path), False
    from huggingface_hub import try_to_load_from_cache

    if weights_offline():
        hub_offline()
    cached = try_to_load_from_cache(model_id, "config.json")
    if isinstance(cached, str):
        return model_id, False
    reason = "not in the local Hugging Face cache and downloads are off"
    if not weights_offline():
        from huggingface_hub import snapshot_download

        LOG.info(
            "%s is not in the local Hugging Face cache; trying to download it from the hub",
            model_id,
        )
        try:
            snapshot_download(model_id)
            LOG.info("downloaded %s", model_id)
            return model_id, False
        except Exception as exc:  # network and hub errors: reported below
            text = str(exc).strip()
            reason = f"download failed: {text.splitlines()[0] if text else type(exc).__name__}"
    if allow_random:
        family = hub_model_type(model_id)
        if family in ("segformer", "mask2former"):
            LOG.warning(
                "closed-set model %s not found (%s); using random weights because "
                "allow_random_weights is on",
                model_id,
                reason,
            )
        if family == "segformer":
            return str(build_random_segformer(model_id, id2label)), True
        if family == "mask2former":
            return str(build_random_mask2former(id2label)), True
        if family == "oneformer":
            return str(build_random_oneformer(id2label)), True
        raise WeightsNotFoundError(
            f"random weights are built for SegFormer, Mask2Former and OneFormer models, not "
            f"'{model_id}' ({family}); use "
            "closed_set.model:=nvidia/segformer-b0-finetuned-ade-512-512 to test offline"
        )
    raise WeightsNotFoundError(
        f"closed-set model '{model_id}' not found ({reason}). " + _missing_hint("closed_set.model")
    )


# ------------------------------------------------------------------------------ open_clip
def resolve_clip_pretrained(model_name: str, tag: str) -> tuple[str | None, str]:
    """Where open_clip should load ``model_name`` / ``tag`` from, without touching the network
    when downloads are off.

    Returns ``(source, reason)``: ``source`` is a local checkpoint file given as the tag, the
    tag itself when its checkpoint is in the Hugging Face / open_clip cache or open_clip may
    download it (online), or None when it is unavailable (``reason`` says why). Offline, a
    missing file is reported at once instead of after ~50 s of hub retries.
    """
    import open_clip
    from open_clip import pretrained as oc_pretrained

    local = Path(tag).expanduser()
    if local.is_file():
        return str(local.absolute()), ""
    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not cfg:
        return None, (
            f"'{tag}' is neither a file nor a pretrained tag of {model_name} "
            "(see open_clip.list_pretrained())"
        )
    offline = weights_offline()
    if offline:
        hub_offline()
    if _cached_clip_file(cfg, oc_pretrained) is not None:
        return tag, ""  # open_clip finds it in its cache (the tag keeps its quick_gelu etc.)
    if offline:
        return None, "not in the local cache and downloads are off (SFS_OFFLINE/HF_HUB_OFFLINE set)"
    LOG.info(
        "CLIP weights %s/%s are not in the local cache; trying to download them",
        model_name,
        tag,
    )
    return tag, ""


class _OpenClipChatter(logging.Filter):
    """Drops open_clip's own progress lines (it logs through the root logger) below ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "open_clip" not in record.pathname


@contextlib.contextmanager
def quiet_open_clip() -> Iterator[None]:
    """Build an open_clip model without its unformatted root-logger lines ("Parsing model
    identifier", "No pretrained weights loaded ..."): sfs_ros logs one line per model itself."""
    chatter = _OpenClipChatter()
    logging.getLogger().addFilter(chatter)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(chatter)


def _cached_clip_file(cfg: dict, oc_pretrained: object) -> str | None:
    """The already-downloaded checkpoint of an open_clip pretrained config, if any."""
    from huggingface_hub import try_to_load_from_cache

    if cfg.get("file"):
        return cfg["file"] if Path(cfg["file"]).is_file() else None
    if hub := cfg.get("hf_hub", ""):
        repo, filename = os.path.split(hub)  # "org/name/" = default file name (open_clip)
        filename = filename or oc_pretrained.HF_WEIGHTS_NAME
        for name in [*oc_pretrained._get_safe_alternatives(filename), filename]:
            found = try_to_load_from_cache(repo, name)
            if isinstance(found, str):
                return found
    if url := cfg.get("url", ""):
        found = Path.home() / ".cache" / "clip" / os.path.basename(url.split("?")[0])
        if found.is_file():
            return str(found)
    return None


# A tiny WordPiece vocabulary for random-weight BLIP captioners (BERT's five specials first).
_BLIP_TEST_WORDS = (
    "a",
    "an",
    "the",
    "two",
    "some",
    "of",
    "on",
    "in",
    "at",
    "with",
    "and",
    "is",
    "are",
    "near",
    "next",
    "to",
    "there",
    "photo",
    "picture",
    "image",
    "view",
    "dog",
    "cat",
    "person",
    "man",
    "woman",
    "couch",
    "chair",
    "table",
    "bed",
    "car",
    "kite",
    "road",
    "tree",
    "wall",
    "door",
    "window",
    "floor",
    "pallet",
    "jack",
    "box",
    "bottle",
    "cup",
    "sitting",
    "standing",
    "parked",
    "red",
    "brown",
    "white",
    "black",
)


def build_random_blip(out: Path | None = None, seed: int = 0, image_size: int = 64) -> Path:
    """Save a SMALL BLIP captioner (``BlipForConditionalGeneration``) with random weights.

    Architecture and processor are the real transformers classes, saved with save_pretrained,
    so the directory loads through ``AutoProcessor`` / ``BlipForConditionalGeneration`` like
    ``Salesforce/blip-image-captioning-*``. Only the sizes are small (1 layer, width 32,
    ``image_size`` pixels), and the BERT tokenizer is built offline from a tiny vocabulary
    (BERT specials + ``[DEC]`` as BLIP's decoder start token), so random captions are made
    of ordinary words. Cached under :func:`cache_dir`.
    """
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    out = out or cache_dir() / "random" / f"blip-captioning-tiny-seed{seed}"
    if (tmp := _begin_dir_entry(out)) is None:
        return out
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = list(dict.fromkeys(_BLIP_TEST_WORDS))
    tokenizer = BertTokenizer(
        vocab={tok: i for i, tok in enumerate([*specials, *words])}, model_max_length=64
    )
    # BLIP's text decoder starts captions with [DEC] (the bos token), ends them with [SEP].
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    sep, pad, bos = tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id
    width = 32
    config = BlipConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": width,
            "intermediate_size": 2 * width,
            "projection_dim": width,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
            "bos_token_id": bos,
            "eos_token_id": sep,
            "sep_token_id": sep,
            "pad_token_id": pad,
        },
        vision_config={
            "hidden_size": width,
            "intermediate_size": 2 * width,
            "projection_dim": width,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 16,
            "initializer_range": 0.02,  # the default (1e-10) makes every image look the same
        },
        projection_dim=width,
        image_text_hidden_size=width,
    )
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(config).eval()
    image_processor = BlipImageProcessor(size={"height": image_size, "width": image_size})
    with _finish_dir_entry(tmp, out):
        model.save_pretrained(tmp)
        BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(tmp)
    return out
