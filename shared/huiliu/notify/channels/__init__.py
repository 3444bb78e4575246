"""Channels behind one small interface (:class:`~huiliu.notify.channels.base.Sender`)."""
