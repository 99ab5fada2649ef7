"""The wired collaborators of one notifier instance, shared by routes, handlers and loops."""

from __future__ import annotations

from dataclasses import dataclass

from ksbb_kit.clock import Clock
from ksbb_kit.runtime import ServiceRuntime

from ksbb_notifier.adapters.http_sender import WebhookSender
from ksbb_notifier.adapters.secrets import SecretBox
from ksbb_notifier.adapters.store import NotifierStore
from ksbb_notifier.dispatcher import Dispatcher
from ksbb_notifier.domain.ssrf import AddressPolicy
from ksbb_notifier.mailer import Mailer
from ksbb_notifier.service import NotifierService
from ksbb_notifier.settings import NotifierSettings


@dataclass
class Components:
    """Everything the composition root built."""

    settings: NotifierSettings
    runtime: ServiceRuntime
    clock: Clock
    store: NotifierStore
    box: SecretBox
    policy: AddressPolicy
    sender: WebhookSender
    dispatcher: Dispatcher
    mailer: Mailer
    service: NotifierService
