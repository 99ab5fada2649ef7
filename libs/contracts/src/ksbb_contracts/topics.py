"""Kafka topics, their owners, retention and consumers — defined once for every service.

This module imports nothing else from the contracts: events name their topic, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FOREVER = -1
DAY_MS = 24 * 3600 * 1000
DLQ_RETENTION_MS = 30 * DAY_MS
# Compacted confidential topics: a tombstone (erasure) stays readable this long after compaction, so a consumer
# that was down for up to a week still sees it; an erased value is compacted away within ERASURE_DEADLINE_MS.
TOMBSTONE_RETENTION_MS = 7 * DAY_MS
ERASURE_DEADLINE_MS = DAY_MS


@dataclass(frozen=True)
class Topic:
    """A Kafka topic: one owning (producing) service, explicit partitions and retention."""

    name: str
    owner: str
    description: str
    partitions: int = 3
    retention_ms: int = FOREVER
    compacted: bool = False
    confidential: bool = False
    consumers: tuple[str, ...] = field(default=())
    #: Services that read their own topic back after the fact, as (service, job): the group is
    #: `<service>-<job>` (`ksbb_kit.followers`); a follower dead-letters nothing, so it has no DLQ.
    followers: tuple[tuple[str, str], ...] = field(default=())
    tombstone_retention_ms: int = TOMBSTONE_RETENTION_MS
    erasure_deadline_ms: int = ERASURE_DEADLINE_MS

    def config(self, replication_factor: int = 1) -> dict[str, str]:
        """Topic-level Kafka configuration applied at creation (or rendered for Strimzi and compose).

        With 3 replicas a write needs 2 in-sync copies (acks=all), so one broker may be down without loss.
        """
        durability = {"min.insync.replicas": str(min(2, max(1, replication_factor - 1)))}
        if self.compacted:
            return {
                "cleanup.policy": "compact", "min.compaction.lag.ms": "0", "retention.ms": "-1",
                "delete.retention.ms": str(self.tombstone_retention_ms),
                "max.compaction.lag.ms": str(self.erasure_deadline_ms),
                "segment.ms": str(self.erasure_deadline_ms),
                **durability,
            }
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms), **durability}

    def dlq(self, group: str) -> Topic:
        """The dead-letter topic of this topic for one consumer group."""
        return Topic(
            name=f"{self.name}.{group}.dlq",
            owner=group,
            description=f"Dead letters of {self.name} for consumer group {group}.",
            partitions=1,
            retention_ms=DLQ_RETENTION_MS,
        )


ORGANISATIONS = Topic(
    "ksbb.registry.organisations", "registry", "Facilitator organisations (public part).",
    consumers=("pledges", "notifier", "publisher"),
)
RECIPIENTS = Topic(
    "ksbb.registry.recipients", "registry", "Recipient lifecycle (public part).",
    consumers=("pledges", "notifier", "publisher"),
)
NEEDS = Topic(
    "ksbb.registry.needs", "registry", "Needs posted by recipients.",
    consumers=("pledges", "notifier", "publisher"),
)
REGISTRY_CONTACTS = Topic(
    "ksbb.registry.contacts", "registry",
    "CONFIDENTIAL contact persons of recipients and organisations; compacted, keyed by owner id, tombstone on erasure.",
    compacted=True, confidential=True, consumers=("pledges", "notifier"),
)
PLEDGES = Topic(
    "ksbb.pledges.pledges", "pledges", "Pledge lifecycle.",
    consumers=("notifier", "publisher"),
    # Pledges its database lost after their events were out are taken back from here (ADR 0005).
    followers=(("pledges", "pledge-recovery"),),
)
LEDGER = Topic(
    "ksbb.pledges.ledger", "pledges", "Need ledger quantities (requested/committed/in transit/delivered).",
    consumers=("registry", "publisher"),
)
DONORS = Topic(
    "ksbb.pledges.donors", "pledges", "Donor public profiles (display name only if opted in).",
    consumers=("publisher",),
)
OFFERS = Topic(
    "ksbb.pledges.offers", "pledges", "Donor offers and matching proposals.",
    consumers=("publisher",),
)
DONOR_CONTACTS = Topic(
    "ksbb.pledges.contacts", "pledges",
    "CONFIDENTIAL donor coordination contacts; compacted, keyed by donor id, tombstone on erasure.",
    compacted=True, confidential=True, consumers=("notifier",),
)
WEBHOOKS = Topic(
    "ksbb.notifier.webhooks", "notifier", "Webhook delivery failures and disabled endpoints.",
    consumers=(),
)

TOPICS: dict[str, Topic] = {
    t.name: t
    for t in (ORGANISATIONS, RECIPIENTS, NEEDS, REGISTRY_CONTACTS, PLEDGES, LEDGER, DONORS, OFFERS,
              DONOR_CONTACTS, WEBHOOKS)
}


#: The rule for event types a consumer has no handler for. A consumer group dead-letters every record on
#: its topics it cannot handle — a type it registered no handler for, a type these contracts do not define
#: (a newer version, a typo, another topic's event) — so nothing is dropped silently; an operator replays
#: the dead letters once the consumer handles the type. The exceptions are the types listed here for the
#: group: it reads them on purpose without acting (counted as "ignored"). Keep each list short and say why.
IGNORED_EVENT_TYPES: dict[str, frozenset[str]] = {
    "registry": frozenset(),
    "pledges": frozenset(),
    # The notifier keeps no view of pledges: a restatement (anti-entropy, ADR 0005) is no news to anyone it
    # e-mails or calls back, so it neither mails nor fans it out.
    "notifier": frozenset({"ksbb.pledge.restated.v1"}),
    "publisher": frozenset(),
}


def ignores_event_type(service: str, event_type: str) -> bool:
    """Whether a service's consumer group skips this event type on purpose (else: handle or dead-letter)."""
    return event_type in IGNORED_EVENT_TYPES.get(service, frozenset())


def topics_consumed_by(service: str) -> list[Topic]:
    """Topics one service's consumer group reads."""
    return [t for t in TOPICS.values() if service in t.consumers]


def all_topics_with_dlqs() -> list[Topic]:
    """Every domain topic plus one dead-letter topic per (topic, consumer group)."""
    result = list(TOPICS.values())
    for topic in TOPICS.values():
        result.extend(topic.dlq(group) for group in topic.consumers)
    return result
