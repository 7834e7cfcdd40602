"""`agecam eval` without --json: the report's figures as short readable lines, each rate with its 95 % interval."""

from __future__ import annotations


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _ci(ci: list[float] | None, percent: bool = True) -> str:
    if ci is None:
        return ""
    low, high = (f"{100 * v:.1f}" for v in ci) if percent else (f"{v:.2f}" for v in ci)
    return f" [{low}-{high}]"


def _estimate(entry: dict) -> str:
    return f"{_pct(entry['value'])}{_ci(entry['ci95'])} (n {entry['n']})"


def _mean_error(report: dict, ci: dict) -> str:
    interval = ci.get("mean_error")
    bounds = f" [{interval[0]:+.2f} to {interval[1]:+.2f}]" if interval else ""
    by_bin = report["mean_error_by_age_bin"].items()
    bins = "  ".join(f"{band} {value:+.1f}" for band, value in by_bin if value is not None)
    return f"mean error {report['mean_error']:+.2f}{bounds} years (+: estimated older); by age: {bins}"


def _rates(report: dict, ci: dict) -> list[str]:
    labels = {
        "c25_minor_recall": "minors (<18) estimated under 25",
        "c25_teen_recall": "teens (13-17) estimated under 25",
        "c25_false_alarm": "false alarms (25+ estimated under 25)",
    }
    return [f"  {text:40} {_pct(report[key])}{_ci(ci.get(key))}" for key, text in labels.items()]


def _groups(report: dict) -> list[str]:
    lines = []
    for attribute in ("gender", "race"):
        for entry in report.get(f"by_{attribute}", {}).values():
            mae = entry["mae"]
            lines.append(
                f"  {attribute} {entry['name']:8} n {entry['n']:5}  MAE {mae['value']:.2f}{_ci(mae['ci95'], False)}"
                f"  minors<25 {_pct(entry['c25_minor_recall']['value'])}"
                f"  false alarms {_pct(entry['c25_false_alarm']['value'])}"
            )
    return lines


def _calibration(report: dict) -> list[str]:
    cal = report.get("calibration")
    if not cal:
        return []
    ece = "  ".join(f"{key.replace('p_under_', 'P(<')}) {value:.3f}" for key, value in cal["ece"].items())
    lines = [f"calibration ECE as shipped (T={cal['model_temperature']:g}): {ece}"]
    if "fitted_temperature" in cal:
        fitted = "  ".join(f"{value:.3f}" for value in cal["ece_fitted"].values())
        crossed = "  ".join(f"{value:.3f}" for value in cal["ece_cross_fitted"].values())
        lines.append(f"  T fitted on this split {cal['fitted_temperature']:g}: ECE {fitted} (cross-fitted {crossed})")
    return lines


def _operating_points(report: dict) -> list[str]:
    points = report.get("risk_operating_points")
    if not points:
        return []
    lines = ["policy.risk per photo (P(<25) as shipped): the risk that reaches a share of the minors, and its cost:"]
    for key, point in points.items():
        share = f"{100 * float(key.removeprefix('minors_')):g} %"
        reached = f"{_pct(point['over_30_reached'])}{_ci(point['ci95'])}"
        lines.append(f"  {share} of minors: risk {point['risk']:.3f}, aged 30+ reaching it {reached}")
    return lines


def format_report(report: dict) -> str:
    ci = report.get("ci95", {})
    # Rows left out (a missing or unreadable image, a bad age): said here, or a file half of whose rows were
    # unusable read as a clean score of the other half.
    skipped = report.get("bad_rows", 0)
    left_out = f"; {skipped} rows left out, each with its reason in bad_rows.csv" if skipped else ""
    lines = [
        f"{report['data']} ({report['split']}): {report['n']} photos, {report['no_face']} with no face found{left_out}",
        f"MAE {report['mae']:.2f}{_ci(ci.get('mae'), False)} years"
        f"  within 2 years {_estimate(report['within_years']['2'])}  within 5 {_estimate(report['within_years']['5'])}",
        _mean_error(report, ci),
        "Challenge 25 (95 % bootstrap intervals):",
        *_rates(report, ci),
        "  under 25, by age:",
        *(f"    {age:6} {_estimate(entry)}" for age, entry in report["under25_by_age"].items()),
        "  false alarms, by age:",
        *(f"    {band:6} {_estimate(entry)}" for band, entry in report["false_alarm_by_age"].items()),
        *_groups(report),
        *_calibration(report),
        *_operating_points(report),
        f"report: {report['report']}",
    ]
    return "\n".join(lines)
