"""E-mail templates in Bahasa Indonesia first, then English; rendered as plain text and HTML."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import Environment, StrictUndefined
from markupsafe import Markup, escape


@dataclass(frozen=True)
class RenderedEmail:
    """A ready-to-send e-mail body pair."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Template:
    """One e-mail kind: a bilingual subject and an Indonesian and an English body (Jinja2 text)."""

    subject: str
    body_id: str
    body_en: str


_PLEDGE_FACTS_ID = (
    "Bantuan: {{ item }} × {{ quantity }}\nRencana tanggal: {{ planned_date }}\nNomor komitmen: {{ pledge_id }}"
)
_PLEDGE_FACTS_EN = "Aid: {{ item }} × {{ quantity }}\nPlanned date: {{ planned_date }}\nPledge number: {{ pledge_id }}"

TEMPLATES: dict[str, Template] = {
    "donor_pledge_created": Template(
        subject="Komitmen bantuan diterima / Pledge received — {{ recipient_name }}",
        body_id=(
            "Terima kasih, {{ name }}. Komitmen bantuan Anda untuk {{ recipient_name }} telah kami terima.\n"
            + _PLEDGE_FACTS_ID
            + "\n\n"
            "Silakan hubungi kontak penerima dalam 2×24 jam (sebelum {{ call_by }}) "
            "untuk mengatur penyerahan:\n"
            "{% if contact %}  {{ contact.contact_name }} — {{ contact.phone }}"
            "{% if contact.email %} — {{ contact.email }}{% endif %}"
            "{% if contact.street_address %}\n  {{ contact.street_address }}{% endif %}"
            "{% else %}  (kontak akan dikirim oleh fasilitator){% endif %}\n"
            "Bantuan harus layak, higienis, halal dan bebas pesan politik."
        ),
        body_en=(
            "Thank you, {{ name }}. Your pledge for {{ recipient_name }} has been received.\n"
            + _PLEDGE_FACTS_EN
            + "\n\n"
            "Please call the recipient's contact within 2×24 hours (before {{ call_by }}) "
            "to arrange the handover:\n"
            "{% if contact %}  {{ contact.contact_name }} — {{ contact.phone }}"
            "{% if contact.email %} — {{ contact.email }}{% endif %}"
            "{% if contact.street_address %}\n  {{ contact.street_address }}{% endif %}"
            "{% else %}  (the facilitator will send the contact){% endif %}\n"
            "Aid must be in good condition, hygienic, halal and free of political messages."
        ),
    ),
    "donor_pledge_confirmed": Template(
        subject="Komitmen dikonfirmasi / Pledge confirmed — {{ recipient_name }}",
        body_id="Halo {{ name }}, komitmen Anda untuk {{ recipient_name }} telah dikonfirmasi.\n" + _PLEDGE_FACTS_ID,
        body_en="Hello {{ name }}, your pledge for {{ recipient_name }} has been confirmed.\n" + _PLEDGE_FACTS_EN,
    ),
    "donor_pledge_expiring": Template(
        subject="Komitmen segera berakhir / Pledge expiring soon — {{ recipient_name }}",
        body_id=(
            "Halo {{ name }}, komitmen Anda untuk {{ recipient_name }} akan berakhir pada {{ expires_at }} "
            "jika belum ditindaklanjuti.\n" + _PLEDGE_FACTS_ID
        ),
        body_en=(
            "Hello {{ name }}, your pledge for {{ recipient_name }} will expire at {{ expires_at }} "
            "unless acted on.\n" + _PLEDGE_FACTS_EN
        ),
    ),
    "donor_pledge_expired": Template(
        subject="Komitmen berakhir / Pledge expired — {{ recipient_name }}",
        body_id="Halo {{ name }}, komitmen Anda untuk {{ recipient_name }} telah berakhir ({{ reason }}).\n"
        + _PLEDGE_FACTS_ID,
        body_en="Hello {{ name }}, your pledge for {{ recipient_name }} has expired ({{ reason }}).\n"
        + _PLEDGE_FACTS_EN,
    ),
    "donor_pledge_delivered": Template(
        subject="Terima kasih! Bantuan telah diterima / Thank you! Aid delivered — {{ recipient_name }}",
        body_id=(
            "Terima kasih, {{ name }}! {{ recipient_name }} telah menerima {{ received_quantity }} "
            "{{ item }}. Kolaborasi Anda sangat berarti.\n" + _PLEDGE_FACTS_ID
        ),
        body_en=(
            "Thank you, {{ name }}! {{ recipient_name }} received {{ received_quantity }} {{ item }}. "
            "Your collaboration matters.\n" + _PLEDGE_FACTS_EN
        ),
    ),
    "pledge_new": Template(
        subject="Komitmen bantuan baru / New pledge — {{ recipient_name }}",
        body_id=(
            "Halo {{ name }}, ada komitmen bantuan baru untuk {{ recipient_name }}. "
            "Donatur akan menghubungi dalam 2×24 jam. Mohon konfirmasi di platform KSBB.\n" + _PLEDGE_FACTS_ID
        ),
        body_en=(
            "Hello {{ name }}, there is a new pledge for {{ recipient_name }}. "
            "The donor will call within 2×24 hours. Please confirm it on the KSBB platform.\n" + _PLEDGE_FACTS_EN
        ),
    ),
    "pledge_cancelled": Template(
        subject="Komitmen dibatalkan / Pledge cancelled — {{ recipient_name }}",
        body_id="Halo {{ name }}, komitmen bantuan untuk {{ recipient_name }} dibatalkan ({{ reason }}).\n"
        + _PLEDGE_FACTS_ID,
        body_en="Hello {{ name }}, the pledge for {{ recipient_name }} was cancelled ({{ reason }}).\n"
        + _PLEDGE_FACTS_EN,
    ),
    "endpoint_disabled": Template(
        subject="Webhook dinonaktifkan / Webhook endpoint disabled",
        body_id=(
            "Halo {{ name }}, endpoint webhook {{ url }} ({{ endpoint_id }}) dinonaktifkan: {{ reason }}.\n"
            'Perbaiki penerima Anda, aktifkan kembali endpoint, lalu gunakan "recover" untuk mengirim ulang.'
        ),
        body_en=(
            "Hello {{ name }}, webhook endpoint {{ url }} ({{ endpoint_id }}) was disabled: {{ reason }}.\n"
            'Fix your receiver, re-enable the endpoint, then use "recover" to resend failed messages.'
        ),
    ),
}

_ENV = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_FOOTER_ID = "Pesan ini dikirim otomatis oleh platform KSBB (Kolaborasi Sosial Berskala Besar) DKI Jakarta."
_FOOTER_EN = "This message was sent automatically by the KSBB platform."


def render(kind: str, context: dict[str, Any]) -> RenderedEmail:
    """Render one e-mail kind; KeyError for an unknown kind, jinja2 errors for a missing variable."""
    template = TEMPLATES[kind]
    subject = compiled(template.subject).render(context)
    body_id = compiled(template.body_id).render(context)
    body_en = compiled(template.body_en).render(context)
    text = f"{body_id}\n\n{_FOOTER_ID}\n\n---- English ----\n\n{body_en}\n\n{_FOOTER_EN}\n"
    html = (
        '<!doctype html><html lang="id"><body>'
        f'<section lang="id">{_paragraphs(body_id)}<p><small>{escape(_FOOTER_ID)}</small></p></section><hr>'
        f'<section lang="en">{_paragraphs(body_en)}<p><small>{escape(_FOOTER_EN)}</small></p></section>'
        "</body></html>"
    )
    return RenderedEmail(subject=subject, text=text, html=html)


@functools.cache
def compiled(source: str) -> jinja2.Template:
    """A template source compiled once per process (compiling costs far more than rendering; the set is fixed)."""
    return _ENV.from_string(source)


def _paragraphs(text: str) -> Markup:
    parts = [Markup("<br>").join(escape(line) for line in block.split("\n")) for block in text.split("\n\n")]
    return Markup("").join(Markup("<p>") + part + Markup("</p>") for part in parts)
