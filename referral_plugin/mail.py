"""Outgoing email over SMTP, configured by the ``MAIL_*`` settings; sent from jobs, never from a request."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from email.utils import make_msgid

from flask import current_app

#: Port of SMTP over implicit TLS (``MAIL_USE_TLS`` means STARTTLS on any other port).
SMTPS_PORT = 465


def mail_configured() -> bool:
    """Tell whether an SMTP server is configured (``MAIL_SERVER``); without one the widget offers mailto links."""
    return bool(current_app.config.get("MAIL_SERVER"))


def _header(value: str) -> str:
    """Fold a header value to one line: a CR or LF in it would start a new header."""
    return " ".join(str(value).split())


def build_message(to: str, subject: str, text: str, html: str | None = None, *,
                  sender: str | None = None) -> EmailMessage:
    """Return a text email, with an HTML alternative when ``html`` is given."""
    message = EmailMessage()
    message["From"] = _header(sender or current_app.config.get("MAIL_DEFAULT_SENDER") or "referrals@localhost")
    message["To"] = _header(to)
    message["Subject"] = _header(subject)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="referral-plugin")
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def send_email(to: str, subject: str, text: str, html: str | None = None, *, sender: str | None = None) -> None:
    """Send one email through the configured SMTP server.

    :raise smtplib.SMTPException, OSError: when the server cannot be reached or refuses the message.
    :raise RuntimeError: when no ``MAIL_SERVER`` is configured.
    """
    config = current_app.config
    server = config.get("MAIL_SERVER")
    if not server:
        raise RuntimeError("MAIL_SERVER is not configured")
    port = int(config.get("MAIL_PORT") or 25)
    timeout = float(config.get("MAIL_TIMEOUT", 10))
    message = build_message(to, subject, text, html, sender=sender)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if port == SMTPS_PORT:
        smtp = smtplib.SMTP_SSL(server, port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(server, port, timeout=timeout)
    with smtp:
        if config.get("MAIL_USE_TLS") and port != SMTPS_PORT:
            smtp.starttls(context=context)
        if config.get("MAIL_USERNAME"):
            smtp.login(str(config["MAIL_USERNAME"]), str(config.get("MAIL_PASSWORD") or ""))
        smtp.send_message(message)
