"""The end-of-run summary: a dict for --json, and a short text for people."""

from __future__ import annotations

from edge.config import PolicyConfig
from edge.pipeline.runner import RunResult
from edge.pipeline.stage_timer import ms_per_frame
from edge.vision.age_groups import group_order

DEFAULT_THRESHOLD = PolicyConfig.model_fields["threshold"].default


def build_summary(result: RunResult, threshold: float | None = None) -> dict:
    """`threshold` is policy.threshold, the Challenge age each customer's p_under is for."""
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
        "bad_age_samples": result.bad_age_samples,
        "customers": [
            {
                key: row[key]
                for key in (
                    "track_id",
                    "first_seen",
                    "last_seen",
                    "age",
                    "age_low",
                    "age_high",
                    "p_under",
                    "samples",
                    "age_group",
                )
            }
            for row in counted
        ],
        "uncounted_tracks": len(result.customers) - len(counted),
        "threshold": threshold,
        "stats": result.hourly_stats,
        "elapsed_s": round(result.elapsed_s, 3),
        "fps": round(frames / result.elapsed_s, 2) if result.elapsed_s > 0 else None,
        "stage_ms": ms_per_frame(result.stage_seconds, frames),
        "model": {
            "path": model.path,
            "sha256": model.sha256,
            "provider": model.provider,
            **{key: model.metadata[key] for key in ("backbone", "precision") if key in model.metadata},
        },
    }


def plural(count: int, noun: str) -> str:
    """ "1 flag", "2 flags"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def format_summary(summary: dict) -> str:
    """The text a person reads after a replay: what was seen, the statistics, and (with --pos) the policy's
    alerts and flags, one per line."""
    lines = [
        f"run {summary['run_id']} {summary['status']}: {summary['source']}",
        f"  {plural(summary['frames'], 'frame')} ({summary['dropped_frames']} dropped{_full(summary)}), "
        f"{plural(summary['faces'], 'face')}, {plural(summary['age_inferences'], 'age inference')}, "
        f"{summary['fps']} fps on {summary['model']['provider']}",
        *_customer_lines(summary),
    ]
    if summary.get("bad_age_samples"):
        lines.insert(2, f"  {plural(summary['bad_age_samples'], 'unusable age sample')} from the model, dropped")
    stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in summary["stage_ms"].items())
    lines.append(f"  ms per frame: {stages}")
    if "pos" in summary:
        lines += _pos_lines(summary["pos"])
    lines.append(f"  event log: {summary['db']}")
    return "\n".join(lines)


def _customer_lines(summary: dict) -> list[str]:
    customers, stats = summary["customers"], summary["stats"]
    if not customers:
        return ["  no customers: no face was seen long enough for an age estimate"]
    lines = [f"  {plural(len(customers), 'customer')}:"]
    for customer in customers:
        risk = _risk(customer, summary.get("threshold"))
        lines.append(
            f"    #{customer['track_id']:<4} age {customer['age']:5.1f} "
            f"[{customer['age_low']:.1f}-{customer['age_high']:.1f}]{risk} group {customer['age_group']:<6} "
            f"{plural(customer['samples'], 'sample')}, seen {customer['first_seen']} to {customer['last_seen']}"
        )
    if stats:
        lines.append("  customers per hour and age group:")
        for row in sorted(stats, key=lambda row: (row["hour"], group_order(row["age_group"]))):
            lines.append(
                f"    {row['hour']}  {row['age_group']:<6} {row['customers']:>4}  mean age {row['mean_age']:.1f}"
            )
    return lines


def _pos_lines(pos: dict) -> list[str]:
    """The POS counts, the threshold (and where it came from when it is not Challenge 25), each alert and flag."""
    policy = f"Challenge {pos['threshold']:g}"
    if pos["threshold"] != DEFAULT_THRESHOLD:
        policy += f": policy.threshold from {pos['config']} (the default is {DEFAULT_THRESHOLD:g})"
    notes = pos["notifications_sent"] + pos["notifications_failed"]
    sent = f", notifications {pos['notifications_sent']} sent, {pos['notifications_failed']} failed" if notes else ""
    lines = [
        f"  POS: {plural(pos['events'], 'event')} ({pos['rejected']} rejected), {plural(pos['alerts'], 'alert')}, "
        f"{plural(pos['flags'], 'flag')}{sent}; policy {policy}"
    ]
    for row in pos["alerts_and_flags"]:
        age = (
            "no face"
            if row["age"] is None
            else f"age {row['age']:.1f} [{row['age_low']:.1f}-{row['age_high']:.1f}]{_risk(row, pos['threshold'])}"
        )
        lines.append(
            f"    {row['kind']:<5} {row['type']:<26} {row['severity']:<6} at {row['t']:6.2f} s  till {row['till_id']}, "
            f"cashier {row['cashier_id'] or '(none)'}, transaction {row['transaction'] or '(none)'}, {age}"
        )
    return lines


def _risk(customer: dict, threshold: float | None) -> str:
    """P(real age < the policy threshold), where the log has it, naming the age: 'P(under threshold)' left the
    reader to find which Challenge age the chance was for."""
    value = customer.get("p_under")
    if value is None:
        return ""
    return f" P(under {'threshold' if threshold is None else format(threshold, 'g')}) {value:.2f}"


def _full(summary: dict) -> str:
    """How many frames had a full-frame detection (detector.interval), where the summary says."""
    full = summary.get("full_detections")
    return "" if full is None else f", {full} with a full-frame detection"
