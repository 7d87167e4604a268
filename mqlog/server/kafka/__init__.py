"""The Kafka wire protocol over an mqlog log directory (``mqlog serve --kafka``).

Modules: ``_codec`` (frames, through kio), ``_context`` (what handlers get),
``_apis`` (the API table) and ``_handlers`` (what fills it), ``_connection``
(one client), ``_server`` (the listener), ``_limits``/``_settings`` (bounds and
options), ``_errors`` (mqlog errors as Kafka error codes), ``_lifecycle``
(shutdown hooks), ``_sasl`` (logins: SaslHandshake and SaslAuthenticate,
served when the server has users), and one module per API.
"""

from mqlog.server.kafka._limits import KafkaLimits
from mqlog.server.kafka._server import KafkaServer
from mqlog.server.kafka._settings import KafkaSettings

__all__ = ["KafkaLimits", "KafkaServer", "KafkaSettings"]
