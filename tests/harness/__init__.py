"""The one test harness: every test starts its servers, users and ports through this package.

- :mod:`.inprocess`: in-process homeservers (``build_app``/``serve``/``free_port``), the
  fake-clock :class:`Harness` (``start``), :class:`DeviceKit`, the SDK :class:`Homeserver`,
  the one SDK user factory :func:`register_client`, and :class:`LoopbackServer`.
- :mod:`.members`: real MLS members against a :class:`Harness` (rooms, invites, sync).
- :mod:`.federated`: federated in-process nodes (:class:`Node`, ``make_nodes``), signed
  requests between them, SDK users on them and the room steps the two-server tests share.
- :mod:`.processes`: ``confide serve`` and CLI clients as processes (the end-to-end and
  two-process tests).
- :mod:`.vectors`: the committed spec vectors match their generators.

Test modules import from here (or their conftest), never from another test module.
"""

from .federated import *  # noqa: F403
from .federated import __all__ as _federated
from .inprocess import *  # noqa: F403
from .inprocess import __all__ as _inprocess
from .members import *  # noqa: F403
from .members import __all__ as _members
from .processes import *  # noqa: F403
from .processes import __all__ as _processes
from .vectors import *  # noqa: F403
from .vectors import __all__ as _vectors

__all__ = [*_inprocess, *_members, *_federated, *_processes, *_vectors]
