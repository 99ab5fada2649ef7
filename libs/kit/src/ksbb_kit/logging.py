"""Structured JSON logs with personal data (phone numbers, e-mail addresses) redacted.

Every line carries the request id and trace id of the work in progress (an HTTP request or a consumed
event), so one user action can be followed across services.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from ksbb_kit.tracing import current_request_id, current_traceparent, trace_id

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?:\+62|62|0)[\s.-]?8[\d\s.-]{7,14}\d")
#: Structured fields a log call may attach with `extra=` (e.g. the access line's `http` object).
STRUCTURED_FIELDS = ("http",)


def redact(text: str) -> str:
    """Mask e-mail addresses and Indonesian phone numbers."""
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, service, logger, message, request id, trace id, extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as redacted JSON."""
        body: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": getattr(record, "service", None) or self._service,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = current_request_id()
        if request_id:
            body["request_id"] = request_id
        trace = trace_id(current_traceparent())
        if trace:
            body["trace_id"] = trace
        for name in STRUCTURED_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                body[name] = json.loads(redact(json.dumps(value, default=str)))
        if record.exc_info:
            body["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(body, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every log record to stderr as redacted JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "pymongo", "httpx", "faststream"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
