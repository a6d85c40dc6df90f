"""A tiny nameko service for the RPC client tests; run as a subprocess with `nameko run`, never imported by pytest."""

from __future__ import annotations

from typing import Any

import eventlet
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc


class ValidationFailed(Exception):
    """Shaped like the domain error: a field -> messages map and a flag travel in ``args``."""

    def __init__(self, errors: dict[str, list[str]], raw: bool = False) -> None:
        super().__init__(errors, raw)


class CallIds(DependencyProvider):
    """Exposes what the worker saw of the caller's ``nameko.call_id_stack`` header."""

    def get_dependency(self, worker_ctx: Any) -> dict[str, Any]:
        return {
            "call_id_stack": worker_ctx.call_id_stack,
            "immediate_parent_call_id": worker_ctx.immediate_parent_call_id,
            "origin_call_id": worker_ctx.origin_call_id,
        }


class RpcTestService:
    name = "rpctest"

    call_ids = CallIds()

    @rpc
    def health(self) -> str:
        return "ok"

    @rpc
    def echo(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"args": list(args), "kwargs": kwargs}

    @rpc
    def slow(self, seconds: float) -> float:
        eventlet.sleep(seconds)
        return seconds

    @rpc(expected_exceptions=ValidationFailed)
    def fail(self) -> None:
        raise ValidationFailed({"title": ["This field is required."], "count": [42]}, False)

    @rpc
    def whoami(self) -> dict[str, Any]:
        return self.call_ids
