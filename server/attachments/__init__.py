"""Encrypted attachments: a content-addressed blob store (:mod:`.store`) and its routes
(:mod:`.routes`). Import the submodules directly; this package imports nothing itself."""

__all__: list[str] = []
