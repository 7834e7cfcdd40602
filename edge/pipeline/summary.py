"""The end-of-run summary: a dict for --json, and a short text for people."""

from __future__ import annotations

from edge.pipeline.runner import RunResult


def build_summary(result: RunResult) -> dict:
    model = result.model
    frames = result.frames
    counted = [row for row in result.customers if row["counted"]]
    return {
        "run_id": result.run_id,
        "status": result.status,
        "source": result.source,
        "db": str(result.db_path),
        "frames": frames,
        "dropped_frames": result.dropped,
        "faces": result.faces,
        "full_detections": result.full_detections,
        "age_inferences": result.age_inferences,
        "largest_batch": result.largest_batch,
        "customers": [
            {
                key: row[key]
                for key in ("track_id", "first_seen", "last_seen", "age", "age_low", "age_high", "samples", "age_group")
            }
            for row in counted
        ],
        "uncounted_tracks": len(result.customers) - len(counted),
        "stats": result.hourly_stats,
        "elapsed_s": round(result.elapsed_s, 3),
        "fps": round(frames / result.elapsed_s, 2) if result.elapsed_s > 0 else None,
        "stage_ms": {stage: round(1000 * total / max(frames, 1), 3) for stage, total in result.stage_seconds.items()},
        "model": {
            "path": model.path,
            "sha256": model.sha256,
            "provider": model.provider,
            **{key: model.metadata[key] for key in ("backbone", "precision") if key in model.metadata},
        },
    }


def format_summary(summary: dict) -> str:
    lines = [
        f"run {summary['run_id']} {summary['status']}: {summary['source']}",
        f"  {summary['frames']} frames ({summary['dropped_frames']} dropped, "
        f"{summary['full_detections']} with a full-frame detection), {summary['faces']} faces, "
        f"{summary['age_inferences']} age inferences, {summary['fps']} fps on {summary['model']['provider']}",
        f"  {len(summary['customers'])} customers:",
    ]
    for customer in summary["customers"]:
        lines.append(
            f"    #{customer['track_id']:<4} age {customer['age']:5.1f} "
            f"[{customer['age_low']:.1f}-{customer['age_high']:.1f}] group {customer['age_group']:<6} "
            f"{customer['samples']} samples, seen {customer['first_seen']} to {customer['last_seen']}"
        )
    lines.append("  customers per hour and age group:")
    for row in summary["stats"]:
        lines.append(f"    {row['hour']}  {row['age_group']:<6} {row['customers']:>4}  mean age {row['mean_age']:.1f}")
    stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in summary["stage_ms"].items())
    lines.append(f"  ms per frame: {stages}")
    lines.append(f"  event log: {summary['db']}")
    return "\n".join(lines)
