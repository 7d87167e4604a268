"""The Kafka-protocol benchmark (``bench/kafka_serve.py``): mqlog serve, Tansu and
the embedded API measured with the same workloads. See ``kafka_bench.run``."""
