"""A mock cloud metadata service (AWS IMDSv1/v2, ECS, Azure, GCP, DigitalOcean, Oracle, Alibaba).

It hands out canary credentials (see :mod:`.canary`) and logs every request. It never contacts
anything: it only answers, on the addresses it is given (127.0.0.1 in tests, the metadata addresses
inside a network namespace for ``imds-detect validate``).
"""

from .canary import CANARY_PATTERN, find_canaries, is_canary
from .config import MockConfig
from .http import Request, Response
from .server import Listener, MockServers
from .service import MockImds, RequestLog

__all__ = ["CANARY_PATTERN", "Listener", "MockConfig", "MockImds", "MockServers", "Request", "RequestLog",
           "Response", "find_canaries", "is_canary"]
