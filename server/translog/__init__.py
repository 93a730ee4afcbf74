"""The server's transparency log: storage, service, witness and HTTP routes.

Seam for the homeserver (composition root)::

    conn = await storage.open_connection(db_path)        # its own connection, same file is fine
    log = await TransparencyLog.open(conn, Signer(server_name, log_key_seed),
                                     privacy_key=log_privacy_key)  # salts of the commitments
    witness = Witness(log.storage, Signer(server_name + "/witness", witness_seed, 0x04),
                      trusted_logs, time.time)
    add_routes(app, log, witness)                        # /_confide/log/v1/..., /_confide/witness/v1/...
    index = await log.append(protocol.audit.DeviceAdded(...))   # device, room, access events

``append`` returns once the entry is on disk under a signed checkpoint. See
``spec/audit-log.md`` for entries, paths and proof formats.
"""

from .http import LOG_PREFIX, WITNESS_PREFIX, add_routes
from .service import BadRequest, InclusionProof, LogError, NotFound, TransparencyLog
from .storage import LegacyLog, LogStorage, StorageCorrupt, migrate, open_connection
from .witness import Witness, WitnessError

__all__ = [
    "LOG_PREFIX", "WITNESS_PREFIX", "add_routes", "BadRequest", "InclusionProof", "LogError",
    "NotFound", "TransparencyLog", "LegacyLog", "LogStorage", "StorageCorrupt", "migrate", "open_connection",
    "Witness", "WitnessError",
]
