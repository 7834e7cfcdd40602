"""`agecam export`, `agecam calibrate`, `agecam ensemble` and `agecam members`, registered through the
agecam.commands entry point; torch loads only when they run."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path


def _count(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of crops, at least `least` (0 crops to compare or calibrate on would
    end in a traceback deep inside the export)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"give a whole number (got {text!r})") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least} (got {value})")
        return value

    return parse


def _export(args: argparse.Namespace) -> int:
    from export.exporter import export_checkpoint

    report = export_checkpoint(
        Path(args.checkpoint),
        Path(args.out),
        args.precision,
        args.data,
        args.parity_crops,
        args.calibration_crops,
        args.temperature_crops,
    )
    print(json.dumps(report, indent=2))
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from export.calibrate import calibrate_model

    out = Path(args.out or args.model)
    print(json.dumps(calibrate_model(Path(args.model), out, args.data, args.crops, args.cache_dir), indent=2))
    return 0


def _add_calibrate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="fit an exported model's age_probs temperature on valid photos and store it in the model"
    )
    parser.add_argument("model", help="an exported MODEL.onnx with an age_probs output")
    parser.add_argument("--data", nargs="+", required=True, help="dataset folders with a valid split")
    parser.add_argument("--out", help="the ONNX file to write (default: the model itself, replaced atomically)")
    parser.add_argument("--crops", type=_count(1), default=1024, help="valid crops to fit on, spread over the datasets")
    parser.add_argument("--cache-dir", help="crop cache (default $AGECAM_CACHE, else ~/.cache/agecam/crops)")
    parser.set_defaults(handler=_calibrate)


def _ensemble(args: argparse.Namespace) -> int:
    from export.ensemble import ensemble_models

    report = ensemble_models([Path(model) for model in args.models], Path(args.out), args.flip)
    print(json.dumps(report, indent=2))
    return 0


def _add_ensemble(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ensemble", help="put several exported age models in one ONNX file whose age_probs is their mean"
    )
    parser.add_argument(
        "models", nargs="+", help="exported MODEL.onnx files with age_probs (two or more, or one with --flip)"
    )
    parser.add_argument(
        "--flip", action="store_true", help="each member also scores every crop's mirror image (flip TTA in the file)"
    )
    parser.add_argument("--out", required=True, help="the ONNX file to write (then run agecam calibrate on it)")
    parser.set_defaults(handler=_ensemble)


def _members(args: argparse.Namespace) -> int:
    from export.members import cut_members

    print(json.dumps(cut_members(Path(args.model), Path(args.out)), indent=2))
    return 0


def _add_members(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "members", help="cut the networks of an agecam ensemble file back out, each as a till-ready model"
    )
    parser.add_argument("model", help="an ONNX file written by agecam ensemble")
    parser.add_argument("--out", required=True, help="an existing folder for the members (named as the pool recorded)")
    parser.set_defaults(handler=_members)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export a checkpoint to a checked ONNX age model")
    parser.add_argument("checkpoint", help="a runs/NAME/best.pt checkpoint")
    parser.add_argument("--out", required=True, help="the ONNX file to write (MODEL.onnx)")
    parser.add_argument(
        "--precision",
        choices=["fp32", "fp16", "int8"],
        default="fp32",
        help="fp32 (default), fp16 (for GPUs) or int8 (static, calibrated on valid crops)",
    )
    parser.add_argument(
        "--data",
        nargs="+",
        help="dataset folders whose valid photos give the parity and "
        "calibration crops (default: the checkpoint's training data)",
    )
    parser.add_argument("--parity-crops", type=_count(1), default=64, help="crops compared with torch (default 64)")
    parser.add_argument("--calibration-crops", type=_count(1), default=256, help="int8 calibration crops (default 256)")
    parser.add_argument(
        "--temperature-crops",
        type=_count(0),
        default=512,
        help="valid crops the age_probs temperature is fitted on (default 512, spread over each dataset; 0: none)",
    )
    parser.set_defaults(handler=_export)
    _add_calibrate(subparsers)
    _add_ensemble(subparsers)
    _add_members(subparsers)
