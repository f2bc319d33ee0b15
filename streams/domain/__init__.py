"""The pure domain: no Faust, Kafka or fastavro imports here (checked by a test)."""
