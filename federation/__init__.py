"""Server-to-server API: server keys, discovery, signed requests, durable queues (``spec/server-server.md``).

Public seams (room federation builds on these):

- the services are built by the composition root (:func:`server.app.create_app`);
- item kinds: ``app[FEDERATION_ITEMS].register(kind, handler, prepare=None)`` with
  ``async handler(item: InboundItem)`` and, for network look-ups, ``async prepare(origin,
  data)`` run before the receiver's database transaction (:mod:`federation.inbound`);
- outbound queue: ``await app[FEDERATION_SENDER].enqueue(destination, kind, data)``,
  or :func:`federation.store.enqueue` in your own transaction then ``sender.wake()``;
- synchronous signed calls: ``await app[FEDERATION_CLIENT].call(method, destination,
  target, body)``; endpoints of your own verify callers with :func:`authenticate_peer`;
- server signatures: ``app[FEDERATION_KEYRING].current()`` signs;
  ``await app[FEDERATION_PEER_KEYS].public_key(server, key_id, t_ms)`` verifies a peer's.
"""

from .appkeys import (
    FEDERATION_CLIENT,
    FEDERATION_ITEMS,
    FEDERATION_KEYRING,
    FEDERATION_PEER_KEYS,
    FEDERATION_POLICY,
    FEDERATION_RECEIVER,
    FEDERATION_SENDER,
    FEDERATION_VERIFIER,
)
from .client import FederationClient
from .inbound import InboundItem, ItemHandler, ItemRegistry, TransactionReceiver
from .keyring import ServerKeyring, SigningKey
from .peer_keys import PeerKeys
from .routes import authenticate_peer
from .sender import FederationSender
from .verifier import RequestVerifier, VerifiedRequest

__all__ = [
    "FEDERATION_CLIENT", "FEDERATION_ITEMS", "FEDERATION_KEYRING", "FEDERATION_PEER_KEYS",
    "FEDERATION_POLICY", "FEDERATION_RECEIVER", "FEDERATION_SENDER", "FEDERATION_VERIFIER",
    "FederationClient", "InboundItem", "ItemHandler", "ItemRegistry", "TransactionReceiver",
    "ServerKeyring", "SigningKey", "PeerKeys", "authenticate_peer", "FederationSender",
    "RequestVerifier", "VerifiedRequest",
]
