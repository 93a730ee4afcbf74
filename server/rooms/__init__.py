"""Hub-ordered rooms: storage (:mod:`.storage`), message classification (:mod:`.classify`),
the hub service (:mod:`.hub`) and its routes (:mod:`.routes`).

Import the submodules directly; this package imports nothing itself, so
:mod:`server.delivery` and :mod:`server.rooms` may use each other's modules.
"""

__all__: list[str] = []
