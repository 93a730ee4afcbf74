"""Hub-ordered rooms: storage (:mod:`.storage`, every room table's SQL and the one event
writer), the one membership check (:mod:`.access`), the hub service (:mod:`.hub`, deciding
through the pure core :mod:`protocol.room_rules`) and its routes (:mod:`.routes`).

Import the submodules directly; this package imports nothing itself, so
:mod:`server.delivery` and :mod:`server.rooms` may use each other's modules.
"""

__all__: list[str] = []
