"""docs/alerts.yml is valid Prometheus rules, and each alert fires on a synthetic
series and stays quiet otherwise (tests/metrics/alerts_test.yml), checked by
promtool (installed by tests/server/install_tools.sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.server._tools import require_program

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "alerts.yml"
UNIT_TESTS = Path(__file__).resolve().parent / "alerts_test.yml"
ALERTS = ["MqlogQueueDepthHigh", "MqlogConsumerLagHigh", "MqlogOldestUnconsumedMessageOld",
          "MqlogKafkaErrorRateHigh", "MqlogHttpErrorRateHigh"]


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([require_program("promtool"), *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_rules_check() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout


def test_every_alert_fires_on_its_synthetic_series() -> None:
    tested = UNIT_TESTS.read_text()
    for alert in ALERTS:
        assert f"alertname: {alert}\n        exp_alerts:\n          - exp_labels" in tested, alert
    done = promtool("test", "rules", str(UNIT_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    """The unit tests can fail: the same file expecting the depth alert earlier does."""
    wrong = UNIT_TESTS.read_text().replace("      - eval_time: 9m\n        alertname: "
                                           "MqlogQueueDepthHigh\n        exp_alerts: []\n", "")
    wrong = wrong.replace("eval_time: 10m\n        alertname: MqlogQueueDepthHigh",
                          "eval_time: 9m\n        alertname: MqlogQueueDepthHigh")
    assert wrong != UNIT_TESTS.read_text()
    copy = tmp_path / "tests" / "metrics" / "alerts_test.yml"
    copy.parent.mkdir(parents=True)
    copy.write_text(wrong)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "alerts.yml").write_text(RULES.read_text())
    done = promtool("test", "rules", str(copy))
    assert done.returncode != 0
    assert "MqlogQueueDepthHigh" in done.stdout + done.stderr
