"""What every nameko service carries besides its domain: a health probe and call-id logging."""

from __future__ import annotations

from common.logging import CallIdLogging
from common.rpc import rpc


class ServiceBase:
    """Base class of the EduSphere services."""

    call_id_logging = CallIdLogging()

    @rpc
    def health(self) -> str:
        """Readiness probe for the gateway: answers "ok" while the service consumes its queue."""
        return "ok"
