"""Scheduled sweep of time-based segment conditions.

Wired in template.yaml as a schedule (the local runtime ticks it from its movable clock); the stage
logic is still to come: until then it logs the tick it was asked to process (huiliu.passthrough).
"""

from huiliu.passthrough import schedule_handler

handler = schedule_handler("segment-sweep")
