"""The POS, policy, alerts and evidence settings are validated like every other section (exit 2)."""

from __future__ import annotations

import pytest

BAD = {
    "zone of two points": ("policy:\n  zone: [[0, 0], [1, 1]]\n", "policy.zone", "at least 3"),
    "zone outside the frame": ("policy:\n  zone: [[0, 0], [1.5, 0], [1, 1]]\n", "policy.zone", "less than or equal"),
    "threshold zero": ("policy:\n  threshold: 0\n", "policy.threshold", "greater than or equal"),
    "webhook not a URL": ("alerts:\n  webhook: example.com/hook\n", "alerts.webhook", "http://"),
    "empty command": ("alerts:\n  command: []\n", "alerts.command", "program first"),
    "port out of range": ("pos:\n  port: 70000\n", "pos.port", "less than or equal"),
    "unknown pos key": ("pos:\n  tokn: x\n", "unknown key 'pos.tokn'", ""),
    "retention zero": ("evidence:\n  retention_days: 0\n", "evidence.retention_days", "greater than"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_pos_settings_exit_2_naming_the_key(agecam, tmp_path, case):
    text, key, words = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = agecam("--config", path, "config", "check")
    assert result.code == 2 and key in result.err and words in result.err, result.err
