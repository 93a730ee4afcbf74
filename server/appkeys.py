"""The application's typed slots (aiohttp ``AppKey``): what the composition root built.

Handlers take exactly the service they need from ``request.app[...]``; the
services themselves receive their collaborators by constructor. Rooms and
delivery add their own keys beside these.
"""

from __future__ import annotations

from aiohttp import web

from server.attachments.store import BlobStore
from server.config import Config
from server.delivery.sync import Delivery
from server.delivery.wakeups import Wakeups
from server.rooms.hub import Hub, RemoteRooms
from server.services.accounts import Accounts
from server.services.audit import AuditTrail
from server.services.devices import Devices
from server.services.key_directory import KeyDirectory
from server.services.log_openings import LogOpenings
from server.services.mfa import Mfa
from server.services.sessions import Sessions
from server.storage import Database
from server.translog import TransparencyLog

__all__ = [
    "CONFIG", "DATABASE", "TRANSPARENCY_LOG", "AUDIT", "SESSIONS", "ACCOUNTS", "DEVICES",
    "KEY_DIRECTORY", "MFA", "HUB", "DELIVERY", "WAKEUPS", "ATTACHMENTS",
    "REMOTE_ROOMS", "LOG_OPENINGS",
]

CONFIG = web.AppKey("confide.config", Config)
DATABASE = web.AppKey("confide.database", Database)
TRANSPARENCY_LOG = web.AppKey("confide.transparency_log", TransparencyLog)
AUDIT = web.AppKey("confide.audit", AuditTrail)
SESSIONS = web.AppKey("confide.sessions", Sessions)
ACCOUNTS = web.AppKey("confide.accounts", Accounts)
DEVICES = web.AppKey("confide.devices", Devices)
KEY_DIRECTORY = web.AppKey("confide.key_directory", KeyDirectory)
MFA = web.AppKey("confide.mfa", Mfa)
#: Openings of the private log's entries (issue 10, finding 1).
LOG_OPENINGS = web.AppKey("confide.log_openings", LogOpenings)
#: Rooms, delivery and attachments.
HUB = web.AppKey("confide.hub", Hub)
DELIVERY = web.AppKey("confide.delivery", Delivery)
WAKEUPS = web.AppKey("confide.wakeups", Wakeups)
ATTACHMENTS = web.AppKey("confide.attachments", BlobStore)
#: Rooms hosted elsewhere and hubs' key documents (room federation's follower side).
REMOTE_ROOMS = web.AppKey("confide.remote_rooms", RemoteRooms)
