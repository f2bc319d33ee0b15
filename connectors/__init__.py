"""The edges: local Kafka, topic admin, producers, sample data, the ``zhucan`` CLI."""
