"""``huiliu demo``'s feedback part: the mail sent so far is delivered (SES event publishing, emulated
by ``local/ses_events.py``), and demo recipients open some of it and click in some — played here,
and said so — so the report's funnel shows delivered / opened / clicked rates."""

from __future__ import annotations

from typing import Any


def readers(runtime: Any) -> str:
    from huiliu_infra.local import ses_events

    publisher = ses_events.active()
    if publisher is None:
        return "  (SES event emulation is off: not the embedded moto)"
    mails = sorted(publisher.sent.values(), key=lambda m: m.sent_at)
    delivered = [m for m in mails if "Delivery" in m.events]
    opened = delivered[::2]  # every other recipient opens the mail …
    clicked = opened[::2]  # … and every other of those clicks its link
    ses_events.engage("Open", [m.message_id for m in opened])
    ses_events.engage("Click", [m.message_id for m in clicked], link="https://shop.example/offer")
    runtime.drain(timeout=60)
    bounced = sum("Bounce" in m.events for m in mails)
    return (
        f"  {len(mails)} mails sent with the configuration set; SES published {len(delivered)} deliveries"
        f" and {bounced} bounces (mailbox simulator)\n"
        f"  demo recipients (played by the demo): {len(opened)} open their mail, {len(clicked)} click a link"
    )
