#!/bin/sh
# Rendered by `ksbb topics render` from libs/contracts/src/ksbb_contracts/topics.py; do not edit.
# Creates every KSBB topic and dead-letter topic if missing (idempotent), with explicit partitions,
# retention and compaction, using kafka-topics.sh from the official apache/kafka image.
#   KAFKA_BOOTSTRAP        broker address                 (default kafka:9092)
#   REPLICATION_FACTOR     replicas of each topic         (default 1: the compose stack has one broker)
#   KSBB_TOPIC_PREFIX      prefix of every topic name     (default none)
#   KAFKA_COMMAND_CONFIG   client properties file (TLS, SASL), optional
#   KAFKA_TOPICS           kafka-topics command           (default /opt/kafka/bin/kafka-topics.sh)
set -eu
: "${KAFKA_BOOTSTRAP:=kafka:9092}"
: "${REPLICATION_FACTOR:=1}"
: "${KSBB_TOPIC_PREFIX:=}"
: "${KAFKA_TOPICS:=/opt/kafka/bin/kafka-topics.sh}"
# A write (acks=all) needs 2 in-sync replicas from 3 replicas on, else all of them.
if [ "$REPLICATION_FACTOR" -ge 3 ]; then MIN_ISR=2; else MIN_ISR=1; fi

create() {
    name=$1; partitions=$2; shift 2
    echo "topics-init: ${KSBB_TOPIC_PREFIX}${name} (${partitions} partitions)"
    $KAFKA_TOPICS --bootstrap-server "$KAFKA_BOOTSTRAP" \
        ${KAFKA_COMMAND_CONFIG:+--command-config "$KAFKA_COMMAND_CONFIG"} \
        --create --if-not-exists --topic "${KSBB_TOPIC_PREFIX}${name}" --partitions "$partitions" \
        --replication-factor "$REPLICATION_FACTOR" --config "min.insync.replicas=$MIN_ISR" "$@"
}

create ksbb.registry.organisations 3 --config cleanup.policy=delete --config retention.ms=-1
create ksbb.registry.recipients 3 --config cleanup.policy=delete --config retention.ms=-1
create ksbb.registry.needs 3 --config cleanup.policy=delete --config retention.ms=-1
create ksbb.registry.contacts 3 --config cleanup.policy=compact --config min.compaction.lag.ms=0 --config retention.ms=-1 --config delete.retention.ms=604800000 --config max.compaction.lag.ms=86400000 --config segment.ms=86400000
create ksbb.pledges.pledges 3 --config cleanup.policy=delete --config retention.ms=-1
create ksbb.pledges.ledger 3 --config cleanup.policy=delete --config retention.ms=-1
create ksbb.pledges.donors 3 --config cleanup.policy=delete --config retention.ms=-1
create ksbb.pledges.offers 3 --config cleanup.policy=delete --config retention.ms=-1
create ksbb.pledges.contacts 3 --config cleanup.policy=compact --config min.compaction.lag.ms=0 --config retention.ms=-1 --config delete.retention.ms=604800000 --config max.compaction.lag.ms=86400000 --config segment.ms=86400000
create ksbb.notifier.webhooks 3 --config cleanup.policy=delete --config retention.ms=-1
create ksbb.registry.organisations.pledges.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.registry.organisations.notifier.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.registry.organisations.publisher.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.registry.recipients.pledges.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.registry.recipients.notifier.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.registry.recipients.publisher.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.registry.needs.pledges.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.registry.needs.notifier.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.registry.needs.publisher.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.registry.contacts.pledges.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.registry.contacts.notifier.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.pledges.pledges.notifier.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.pledges.pledges.publisher.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.pledges.ledger.registry.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.pledges.ledger.publisher.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.pledges.donors.publisher.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.pledges.offers.publisher.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000
create ksbb.pledges.contacts.notifier.dlq 1 --config cleanup.policy=delete --config retention.ms=2592000000

echo "topics-init: 28 topics present"
