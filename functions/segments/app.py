"""Segment evaluation on profile events.

Wired in template.yaml (queue, DLQ, partial batch failures); the stage logic is still to come:
until then it logs each event with its correlation id and acknowledges it (huiliu.passthrough).
"""

from huiliu.passthrough import queue_handler

handler = queue_handler("segments")
