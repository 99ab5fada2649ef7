"""The e-mails the SMTP adapter builds, read back by the standard library's parser as a mail client would."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from ksbb_notifier.adapters.smtp import address_header, mime_message
from ksbb_notifier.domain.emails import RenderedEmail

pytestmark = pytest.mark.unit
FROM = address_header("From", "KSBB Jakarta <noreply@ksbb.jakarta.go.id>")
DATE = "Tue, 01 Dec 2026 10:00:00 -0000"


def built(email: RenderedEmail, *, to: str = "budi@example.org", sender: bytes = FROM) -> tuple[bytes, EmailMessage]:
    """The message bytes and how a reader parses them."""
    raw = mime_message(from_header=sender, to=to, email=email, message_id="<eml_1@ksbb.local>", date=DATE)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return raw, parsed


def bodies(message: EmailMessage) -> dict[str, str]:
    """Content type → decoded text of each alternative."""
    assert message.get_content_type() == "multipart/alternative"
    return {part.get_content_type(): part.get_content() for part in message.iter_parts()}


def test_a_bilingual_email_reads_back_exactly_with_every_header() -> None:
    text = (
        "Halo Budi,\n\nTerima kasih: serahkan dalam 2×24 jam.\n"
        + "Alamat " + "panjang " * 30 + "\n"  # longer than a mail line: soft line breaks
        + ".titik di awal baris\n=sama dengan=\nspasi di akhir   \n\nThank you\n"
    )
    html = "<p>Halo <b>Budi</b>, Jl. Merdeka 1 — Gambir</p>\n<p>2×24 jam</p>\n"
    subject = "Komitmen bantuan diterima / Pledge received — Panti Asuhan Kasih Ibu, Gambir, Jakarta Pusat"
    raw, message = built(RenderedEmail(subject=subject, text=text, html=html))

    assert message["Subject"] == subject
    assert message["From"] == "KSBB Jakarta <noreply@ksbb.jakarta.go.id>"
    assert message["To"] == "budi@example.org"
    assert message["Message-ID"] == "<eml_1@ksbb.local>"
    assert message["Date"] == DATE
    assert message["Content-Language"] == "id, en"
    parts = bodies(message)
    assert list(parts) == ["text/plain", "text/html"]  # the richer one last: readers that can show it prefer it
    assert parts["text/plain"].replace("\r\n", "\n") == text.rstrip("\n")
    assert parts["text/html"].replace("\r\n", "\n") == html.rstrip("\n")
    # Seven-bit clean with CRLF line ends and no line a server could refuse (RFC 5322: 998 at most).
    assert raw.isascii()
    lines = raw.split(b"\r\n")
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)
    assert max(len(line) for line in lines) <= 80


def test_a_short_ascii_subject_stays_readable_as_it_is() -> None:
    raw, message = built(RenderedEmail(subject="Pledge received", text="a", html="<p>a</p>"))
    assert b"\r\nSubject: Pledge received\r\n" in raw
    assert message["Subject"] == "Pledge received"


@pytest.mark.parametrize(
    "subject",
    [
        "Komitmen bantuan baru / New pledge: Yayasan Panti Asuhan Kasih Ibu Cempaka Putih Timur, Jakarta Pusat",
        "ééééééééééééééééééééééééééééééééééééééééééééééééééé 2×24 jam 🎁 emoji and spaces  kept",
        "x" * 300,
    ],
)
def test_a_long_subject_is_folded_into_short_lines_and_reads_back_exactly(subject: str) -> None:
    raw, message = built(RenderedEmail(subject=subject, text="a", html="b"))
    assert message["Subject"] == subject
    header = raw.split(b"\r\nDate:", 1)[0].split(b"\r\nSubject: ", 1)[1]
    assert all(len(line) <= 78 - len("Subject: ") for line in header.split(b"\r\n"))


def test_line_breaks_in_a_subject_cannot_add_headers() -> None:
    _, message = built(RenderedEmail(subject="Panti\r\nBcc: attacker@example.org", text="a", html="b"))
    assert message["Bcc"] is None
    assert message["Subject"] == "Panti Bcc: attacker@example.org"


@pytest.mark.parametrize(
    "to", ["budi@example.org\r\nBcc: attacker@example.org", "not an address", "a@b, c@d", "Budi <budi@example.org>"]
)
def test_anything_but_one_bare_address_is_refused(to: str) -> None:
    with pytest.raises(ValueError, match="not one e-mail address"):
        built(RenderedEmail(subject="s", text="a", html="b"), to=to)


def test_names_and_addresses_beyond_ascii_are_encoded_for_their_header() -> None:
    sender = address_header("From", "Pemprov DKI — KSBB <noreply@ksbb.example>")
    assert sender.isascii()  # a display name becomes an RFC 2047 word
    _, message = built(RenderedEmail(subject="s", text="a", html="b"), to="siti@contoh.example", sender=sender)
    assert message["From"] == "Pemprov DKI — KSBB <noreply@ksbb.example>"
    # An address itself beyond ASCII can only travel as UTF-8 (the adapter asks the server for SMTPUTF8).
    _, message = built(RenderedEmail(subject="s", text="a", html="b"), to="bü@exämple.org")
    assert message["To"] == "bü@exämple.org"
