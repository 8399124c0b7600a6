"""Replay is quiet (DESIGN, *The command line*: ``replay``): it brings alert states up to date,
but runs no rule ``command`` for the past."""

from __future__ import annotations

import json
import sys

from tests.helpers import run_cli
from tests.test_knowledge_time import late_shop  # noqa: F401 -- a fixture

RULE = """
[[metrics.replayed.alerts]]
kind = "threshold"
name = "any orders"
measure = "orders"
above = {bound}
judge = "latest"
command = "{python} -c 'import sys; open(\\"fired.jsonl\\", \\"a\\").write(sys.stdin.read() + \\"\\\\n\\")'"
"""


def test_a_replay_brings_alert_states_up_to_date_but_runs_no_command(late_shop):  # noqa: F811
    p = str(late_shop)
    text = late_shop.read_text()
    late_shop.write_text(text + RULE.format(bound=0, python=sys.executable))
    code, out, err = run_cli("replay", "replayed", "--project", p, "--from", "-3d", "--to", "now")
    assert code == 0, err
    states = json.loads(run_cli("alerts", "--project", p, "--json")[1])
    assert [(s["rule"], s["state"]) for s in states] == [("any orders", "firing")]
    fired = late_shop.parent / "fired.jsonl"
    assert not fired.exists()  # the past is no news

    # a pull of the present runs the command as ever
    late_shop.write_text(text + RULE.format(bound=10**9, python=sys.executable))
    assert run_cli("pull", "replayed", "--project", p)[0] == 0
    sent = [json.loads(line) for line in fired.read_text().splitlines() if line]
    assert [(s["rule"], s["state"]) for s in sent] == [("any orders", "resolved")]
