"""Delivery to devices: inboxes (:mod:`.inbox`), wakeups (:mod:`.wakeups`), the sync
stream (:mod:`.sync`) and its routes (:mod:`.routes`: ``/sync``, ``/sync/ws``,
``/sendToDevice``).

Import the submodules directly; this package imports nothing itself.
"""

__all__: list[str] = []
