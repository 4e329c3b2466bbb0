from __future__ import annotations

from webhook_receivers import dispatch, local, receivers

__all__ = ["dispatch", "local", "receivers"]
