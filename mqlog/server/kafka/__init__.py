"""The Kafka wire protocol over an mqlog log directory (``mqlog serve --kafka``)."""
