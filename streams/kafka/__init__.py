"""Kafka administration: the one topic list (``topics``), creating and describing topics
(``admin``), and consumer lag (``lag``)."""
