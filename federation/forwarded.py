"""Followers' submissions for rooms hosted here (``spec/server-server.md`` section 12).

``POST /_confide/federation/v1/rooms/{room_id}/send`` carries a follower's
device's submission; :class:`ForwardedSends` runs it through the hub as the hub
runs its own clients' and the answer (or refusal, e.g. ``stale_epoch``) goes
back as is. It is the one part of room federation that calls the hub, so it is
built after the hub (and the hub, which fans out through
:class:`~federation.rooms.RoomFederation`, is built after that).
"""

from __future__ import annotations

from protocol.federation_rooms import FederatedSend, NotHub, NotYourUser
from protocol.ids import RoomId
from protocol.rooms_api import SendRequest, SendResponse
from server.rooms.hub import Hub
from server.services.sessions import Session

__all__ = ["ForwardedSends"]


class ForwardedSends:
    def __init__(self, hub: Hub, server_name: str) -> None:
        self.hub = hub
        self.server_name = server_name

    async def submit(self, origin: str, room_id: RoomId, req: FederatedSend) -> SendResponse:
        """A follower's submission for a room hosted here: run it as the hub runs its own.
        Raises ``not_hub`` (room not hosted here), ``not_your_user`` (a user of another
        server than ``origin``) or the hub's refusal."""
        if room_id.server != self.server_name:
            raise NotHub("this server does not host that room")
        if req.user_id.server != origin:
            raise NotYourUser("a server submits for its own users only")
        session = Session(req.user_id, req.device_id, "remote", b"")
        return await self.hub.submit(session, room_id, SendRequest(req.txn_id, req.message, req.welcome,
                                                                  req.group_info))
