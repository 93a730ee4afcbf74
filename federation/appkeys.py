"""The federation services' slots in the application (aiohttp ``AppKey``).

:data:`FEDERATION_ITEMS` exists from :func:`server.app.create_app` on
(register item kinds at any time before the app starts serving); the others
are filled by the composition root when the application starts (``cleanup_ctx``).
"""

from __future__ import annotations

from aiohttp import web

from .client import FederationClient
from .forwarded import ForwardedSends
from .inbound import ItemRegistry, TransactionReceiver
from .keyring import ServerKeyring
from .peer_keys import PeerKeys
from .policy import PeerPolicy
from .rooms import RoomFederation
from .sender import FederationSender
from .verifier import RequestVerifier
from .witnessing import Witnessing

__all__ = [
    "FEDERATION_ITEMS", "FEDERATION_KEYRING", "FEDERATION_PEER_KEYS", "FEDERATION_POLICY",
    "FEDERATION_CLIENT", "FEDERATION_SENDER", "FEDERATION_VERIFIER", "FEDERATION_RECEIVER",
    "FEDERATION_ROOMS", "FEDERATION_FORWARDED", "FEDERATION_WITNESSING",
]

FEDERATION_ITEMS = web.AppKey("confide.federation.items", ItemRegistry)
FEDERATION_KEYRING = web.AppKey("confide.federation.keyring", ServerKeyring)
FEDERATION_PEER_KEYS = web.AppKey("confide.federation.peer_keys", PeerKeys)
FEDERATION_POLICY = web.AppKey("confide.federation.policy", PeerPolicy)
FEDERATION_CLIENT = web.AppKey("confide.federation.client", FederationClient)
FEDERATION_SENDER = web.AppKey("confide.federation.sender", FederationSender)
FEDERATION_VERIFIER = web.AppKey("confide.federation.verifier", RequestVerifier)
FEDERATION_RECEIVER = web.AppKey("confide.federation.receiver", TransactionReceiver)
#: Room federation: hub fan-out, follower store, forwarded submissions, remote users.
FEDERATION_ROOMS = web.AppKey("confide.federation.rooms", RoomFederation)
#: Followers' submissions for rooms hosted here, run by the hub.
FEDERATION_FORWARDED = web.AppKey("confide.federation.forwarded", ForwardedSends)
#: The witness of peers' logs and the submitter of this server's checkpoints.
FEDERATION_WITNESSING = web.AppKey("confide.federation.witnessing", Witnessing)
