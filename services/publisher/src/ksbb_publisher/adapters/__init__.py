"""Adapters of the publisher: MongoDB read-model and snapshot stores, the feed poller, Kafka topic replay."""
