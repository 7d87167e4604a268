"""The record header names mqlog itself reads or writes: the one place they are spelled.

A record's headers map names (str) to values (bytes). These names are
reserved: mqlog gives them a meaning, so an application should not set them
for its own purposes (it may read them). Every integer value is ASCII decimal
(``b"1795371348192"``); times are milliseconds since the Unix epoch.

=========================  ==========================================================
Header                     Meaning and value
=========================  ==========================================================
``mqlog.deliver_at``       Set by ``send(delay_s=, deliver_at=)``: a queue group does not
                           hand the record out before this time (ms, decimal).
``mqlog.expires_at``       Set by ``send(ttl_s=)``: a queue group does not deliver the
                           record after this time (ms, decimal); it counts it as
                           expired (and dead-letters it with ``dead_letter_expired``).
``mqlog.timestamp``        Set by ``mqlog replay --to``: the timestamp of the copied
                           record (ms, decimal).
``mqlog.origin``           Set by ``mqlog replay --to``: where the copy came from,
                           ``<topic>/<partition>/<offset>`` (UTF-8).
``dlq.topic``              On a dead letter: the topic it was consumed from (UTF-8).
``dlq.partition``          On a dead letter: its partition there (decimal).
``dlq.offset``             On a dead letter: its offset there (decimal).
``dlq.delivery_count``     On a dead letter: deliveries before it was given up (decimal).
``dlq.reason``             On a dead letter: the last nack's reason, or ``expired``
                           (UTF-8; empty when none was given).
``dlq.first_delivery_ms``  On a dead letter: when it was first delivered (ms, decimal).
``dlq.last_delivery_ms``   On a dead letter: when it was last delivered (ms, decimal).
``reply-to``               On a request (``Log.request``): where the reply goes,
                           ``<topic>/<partition>`` (UTF-8).
``correlation-id``         On a request and its reply: the request's id (32 hex digits).
``error-type``             On a reply whose handler raised: the exception's class name
                           (UTF-8); ``Log.request`` raises RemoteHandlerError.
``error-message``          On such a reply: the exception's message (UTF-8).
=========================  ==========================================================

Redriving a dead letter (``redrive_dead_letters``, ``mqlog dlq redrive``)
removes every header starting ``dlq.`` (:data:`DEAD_LETTER_PREFIX`). Priority
is no header: a record sent with ``priority=p`` goes to the lane topic
``<topic>.p<p>``.
"""

from __future__ import annotations

#: Not delivered by a queue group before this time (ms since the epoch, decimal).
DELIVER_AT = "mqlog.deliver_at"
#: Not delivered by a queue group after this time (ms since the epoch, decimal).
EXPIRES_AT = "mqlog.expires_at"
#: A replayed copy's source timestamp (ms since the epoch, decimal).
REPLAY_TIMESTAMP = "mqlog.timestamp"
#: A replayed copy's source, ``<topic>/<partition>/<offset>``.
REPLAY_ORIGIN = "mqlog.origin"

#: Every dead-letter header starts with this; redrive removes them all.
DEAD_LETTER_PREFIX = "dlq."
#: The topic a dead letter was consumed from.
DEAD_LETTER_TOPIC = "dlq.topic"
#: The partition a dead letter was consumed from (decimal).
DEAD_LETTER_PARTITION = "dlq.partition"
#: The offset a dead letter had in its partition (decimal).
DEAD_LETTER_OFFSET = "dlq.offset"
#: Deliveries of a dead letter before it was given up (decimal).
DEAD_LETTER_DELIVERY_COUNT = "dlq.delivery_count"
#: The last nack's reason, ``expired``, or empty.
DEAD_LETTER_REASON = "dlq.reason"
#: When a dead letter was first delivered (ms since the epoch, decimal).
DEAD_LETTER_FIRST_DELIVERY_MS = "dlq.first_delivery_ms"
#: When a dead letter was last delivered (ms since the epoch, decimal).
DEAD_LETTER_LAST_DELIVERY_MS = "dlq.last_delivery_ms"
#: The dead-letter headers, in the order they are written and shown.
DEAD_LETTER_HEADERS = (
    DEAD_LETTER_TOPIC, DEAD_LETTER_PARTITION, DEAD_LETTER_OFFSET, DEAD_LETTER_DELIVERY_COUNT,
    DEAD_LETTER_REASON, DEAD_LETTER_FIRST_DELIVERY_MS, DEAD_LETTER_LAST_DELIVERY_MS,
)

#: On a request: where its reply goes, ``<topic>/<partition>``.
REPLY_TO = "reply-to"
#: On a request and its reply: the request's id.
CORRELATION_ID = "correlation-id"
#: On a reply whose handler raised: the exception's class name.
ERROR_TYPE = "error-type"
#: On a reply whose handler raised: the exception's message.
ERROR_MESSAGE = "error-message"

