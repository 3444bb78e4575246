"""`huiliu replay` argument parsing and wiring to huiliu.ingest.replay."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from huiliu.ingest.replayer import ReplayReport
from huiliu_infra import cli_replay


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="huiliu")
    cli_replay.register(root.add_subparsers(dest="command"))
    return root


def test_given_replay_arguments_when_run_then_replay_is_called_with_parsed_times(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    def fake_replay(tenant: str, start: datetime, end: datetime, **kwargs: Any) -> ReplayReport:
        seen.update(tenant=tenant, start=start, end=end, **kwargs)
        return ReplayReport(tenant, start.isoformat(), end.isoformat(), requests=3, accepted=1, duplicates=2)

    monkeypatch.setattr("huiliu.ingest.replay", fake_replay)
    args = parser().parse_args(
        [
            "replay",
            "acme",
            "--start",
            "2026-01-02T00:00Z",
            "--end",
            "2026-01-03T00:00:00",
            "--connector",
            "youzan",
        ]
    )

    code = args.func(args)

    assert code == 0
    assert seen["start"] == datetime(2026, 1, 2, tzinfo=UTC)
    assert seen["end"] == datetime(2026, 1, 3, tzinfo=UTC)
    assert seen["connector"] == "youzan"
    assert seen["force"] is False
    assert json.loads(capsys.readouterr().out)["accepted"] == 1


def test_given_a_bad_start_time_when_parsed_then_argparse_rejects_it() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["replay", "acme", "--start", "yesterday"])


def test_given_an_unknown_connector_when_parsed_then_an_argparse_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        parser().parse_args(["replay", "acme", "--start", "2026-01-02T00:00Z", "--connector", "bogus"])

    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_given_the_cli_connector_list_then_it_matches_the_pipelines() -> None:
    from huiliu.ingest.pipeline import CONNECTORS

    assert set(cli_replay.CONNECTOR_NAMES) == set(CONNECTORS)
