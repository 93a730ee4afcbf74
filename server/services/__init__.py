"""The homeserver's services: business logic between the HTTP handlers and storage.

Each service names its collaborators in its constructor; :mod:`server.app`
builds them once. They raise :mod:`protocol.errors` API errors (never HTTP
responses) and write audit entries through :class:`~server.services.audit.AuditTrail`.
"""
