"""Named bounds of the HTTP door, documented in docs/http.md."""

from __future__ import annotations

import dataclasses

from mqlog.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class HttpLimits:
    """What one request may ask of the server.

    - ``max_request_bytes``: the largest request body; a larger one is refused
      (413, code ``request_too_large``) before it is read whole.
    - ``max_batch``: the most messages or records one request may send or ask
      for (``batch_size``, ``limit``, a batch body).
    - ``max_wait_s``: the longest long poll (``wait``).
    - ``max_visibility_s``: the longest a received queue message may be held
      (``visibility``, on receive and when changed), as SQS's 12 hours.

    A request over one of them is refused (400, code ``limit_exceeded``).
    """

    max_request_bytes: int = 1 << 20
    max_batch: int = 1000
    max_wait_s: float = 20.0
    max_visibility_s: float = 43_200.0

    def __post_init__(self) -> None:
        if self.max_request_bytes < 1 or self.max_batch < 1 or self.max_wait_s < 0 or (
                self.max_visibility_s <= 0):
            raise ConfigError(f"HTTP limits must be positive: {self}")
