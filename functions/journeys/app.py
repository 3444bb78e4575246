"""Journeys function: segment.entered|exited and profile.changed|merged|erased (via SQS) ->
enrol, exit at once, resume waits for an event (huiliu.journeys.service, through the stage runner).

A record that fails fails alone (partial batch response); redelivery is a no-op (enrollment keys,
revisions and applied-event ids; actions carry deterministic ids). The service publishes its own
actions before each conditional commit, so the runner has nothing left to publish.
"""

from huiliu.stage import queue_handler


def _build():  # type: ignore[no-untyped-def]
    from huiliu.journeys.wiring import build_service  # pydantic models: first record, not import

    return build_service()


handler = queue_handler("journeys", build=_build)
