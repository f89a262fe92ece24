"""The Confluence channel: replaces a page's body (storage-format XHTML) and uploads its attachments
through atlassian-python-api (tested with the 4.x line).

One send: read the page with its version, PUT the new body as version + 1 (skipped when the body is
unchanged), then upload each attachment (a new version of an attachment of the same name). A 409
means someone saved the page in between: the send is reported as retryable, and the retry re-reads
the version. Every step is idempotent, so sending the same message again is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from atlassian import Confluence
from atlassian.errors import ApiError

from core.publish.delivery import DeliveryResult, Message, connection_failure, http_failure

PAGE_SETTINGS = {
    "confluence_daily": "CONFLUENCE_DAILY_REPORT_PAGE_ID",
    "confluence_known_errors": "CONFLUENCE_KNOWN_ERRORS_PAGE_ID",
    "confluence_known_peaks": "CONFLUENCE_KNOWN_PEAKS_PAGE_ID",
}
"""The setting that names each page, for error messages."""


@dataclass
class ConfluenceChannel:
    client: Confluence
    name: str = "confluence"
    idempotent: bool = True

    @classmethod
    def connect(cls, url: str, username: str, password: str, *, timeout_s: float) -> ConfluenceChannel:
        # The library's own retries (sleeping on Retry-After, backoff) stay off: the one shared retry
        # policy owns every wait. The library takes whole seconds only.
        client = Confluence(
            url=url,
            username=username,
            password=password,
            timeout=max(1, round(timeout_s)),
            backoff_and_retry=False,
            retry_with_header=False,
        )
        return cls(client)

    def page_url(self, page_id: str) -> str:
        return f"{self.client.url.rstrip('/')}/pages/viewpage.action?pageId={page_id}"

    def send(self, message: Message) -> DeliveryResult:
        page_id = str(message.target)
        what = f"Confluence page {page_id} ({message.kind})"
        try:
            page = self.client.get_page_by_id(page_id, expand="body.storage,version")
            version = int(page["version"]["number"])
            title = message.title or page["title"]
            if page.get("body", {}).get("storage", {}).get("value") != message.body or title != page["title"]:
                self.client.put(
                    f"rest/api/content/{page_id}", data=_page_update(page, message.body, version, title)
                )
            for attachment in message.attachments:
                self.client.attach_content(
                    attachment.content,
                    attachment.filename,
                    attachment.content_type,
                    page_id=page_id,
                    comment=f"ai-log-analyzer {message.kind}",
                )
        except (requests.HTTPError, ApiError) as exc:
            return _http_failure(exc, what, message.kind, page_id)
        except requests.RequestException as exc:
            return connection_failure(exc, what)
        except (KeyError, TypeError, ValueError) as exc:
            return DeliveryResult(delivered=False, error=f"{what}: unexpected answer ({type(exc).__name__})")
        return DeliveryResult(delivered=True, location=self.page_url(page_id))


def _page_update(page: dict[str, Any], body: str, version: int, title: str) -> dict[str, Any]:
    """The PUT document: the new title and body as the page's next version."""
    return {
        "version": {"number": version + 1},
        "title": title,
        "type": "page",
        "body": {"storage": {"value": body, "representation": "storage"}},
    }


def _http_failure(exc: Exception, what: str, kind: str, page_id: str) -> DeliveryResult:
    # The library raises HTTPError, or ApiError with the HTTPError as its reason (404, 403).
    cause = exc.reason if isinstance(exc, ApiError) else exc
    response = getattr(cause, "response", None)
    if response is None:
        return DeliveryResult(delivered=False, error=f"{what}: {type(exc).__name__}")
    if response.status_code == 409:
        return DeliveryResult(
            delivered=False,
            retry=True,
            error=f"{what}: HTTP 409 (edited meanwhile; the version is read again)",
        )
    hints = {
        401: "check CONFLUENCE_USERNAME / CONFLUENCE_PASSWORD",
        403: f"the Confluence user may not edit page {page_id} or add attachments",
        404: f"page {page_id} not found: check {PAGE_SETTINGS.get(kind, 'the page id setting')}",
        413: "an attachment is larger than Confluence accepts",
    }
    return http_failure(response.status_code, response.headers, hints, what)
