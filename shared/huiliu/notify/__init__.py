"""Notify: notification.requested → a delivered message or a recorded reason why not (docs/notify.md).

Pure core (policy, templates, contact projection rules) with no AWS calls; channels behind one small
interface (``channels/``); the send log, suppression list, caps, due items and the WeChat token
cache in ``repository.py`` (MessagesTable only).
"""
