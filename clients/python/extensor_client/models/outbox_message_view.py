from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.outbox_status_name import OutboxStatusName
from ..types import UNSET, Unset

T = TypeVar("T", bound="OutboxMessageView")


@_attrs_define
class OutboxMessageView:
    """One outgoing message.

    Attributes:
        outbox_id (str): The id `ctx.email.send` returned.
        to (list[str]):
        subject (str):
        status (OutboxStatusName): Where a message is.
        attempts (int): Delivery attempts made so far.
        queued_at (datetime.datetime):
        installation_id (None | str | Unset): The plugin installation that sent it.
        text (None | str | Unset): The plain-text body as the log keeps it (secrets redacted); `null`
            for viewers and for messages without one.
        html (None | str | Unset): The HTML body, as `text`.
        last_error (None | str | Unset): The relay's (or the connection's) last error.
        next_attempt_at (datetime.datetime | None | Unset): When the next attempt is due; `null` once sent or failed.
        finished_at (datetime.datetime | None | Unset): When it was sent or recorded failed; `null` while pending.
    """

    outbox_id: str
    to: list[str]
    subject: str
    status: OutboxStatusName
    attempts: int
    queued_at: datetime.datetime
    installation_id: None | str | Unset = UNSET
    text: None | str | Unset = UNSET
    html: None | str | Unset = UNSET
    last_error: None | str | Unset = UNSET
    next_attempt_at: datetime.datetime | None | Unset = UNSET
    finished_at: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        outbox_id = self.outbox_id

        to = self.to

        subject = self.subject

        status = self.status.value

        attempts = self.attempts

        queued_at = self.queued_at.isoformat()

        installation_id: None | str | Unset
        if isinstance(self.installation_id, Unset):
            installation_id = UNSET
        else:
            installation_id = self.installation_id

        text: None | str | Unset
        if isinstance(self.text, Unset):
            text = UNSET
        else:
            text = self.text

        html: None | str | Unset
        if isinstance(self.html, Unset):
            html = UNSET
        else:
            html = self.html

        last_error: None | str | Unset
        if isinstance(self.last_error, Unset):
            last_error = UNSET
        else:
            last_error = self.last_error

        next_attempt_at: None | str | Unset
        if isinstance(self.next_attempt_at, Unset):
            next_attempt_at = UNSET
        elif isinstance(self.next_attempt_at, datetime.datetime):
            next_attempt_at = self.next_attempt_at.isoformat()
        else:
            next_attempt_at = self.next_attempt_at

        finished_at: None | str | Unset
        if isinstance(self.finished_at, Unset):
            finished_at = UNSET
        elif isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "outbox_id": outbox_id,
                "to": to,
                "subject": subject,
                "status": status,
                "attempts": attempts,
                "queued_at": queued_at,
            }
        )
        if installation_id is not UNSET:
            field_dict["installation_id"] = installation_id
        if text is not UNSET:
            field_dict["text"] = text
        if html is not UNSET:
            field_dict["html"] = html
        if last_error is not UNSET:
            field_dict["last_error"] = last_error
        if next_attempt_at is not UNSET:
            field_dict["next_attempt_at"] = next_attempt_at
        if finished_at is not UNSET:
            field_dict["finished_at"] = finished_at

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        outbox_id = d.pop("outbox_id")

        to = cast(list[str], d.pop("to"))

        subject = d.pop("subject")

        status = OutboxStatusName(d.pop("status"))

        attempts = d.pop("attempts")

        queued_at = datetime.datetime.fromisoformat(d.pop("queued_at"))

        def _parse_installation_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        installation_id = _parse_installation_id(d.pop("installation_id", UNSET))

        def _parse_text(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        text = _parse_text(d.pop("text", UNSET))

        def _parse_html(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        html = _parse_html(d.pop("html", UNSET))

        def _parse_last_error(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        last_error = _parse_last_error(d.pop("last_error", UNSET))

        def _parse_next_attempt_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                next_attempt_at_type_0 = datetime.datetime.fromisoformat(data)

                return next_attempt_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        next_attempt_at = _parse_next_attempt_at(d.pop("next_attempt_at", UNSET))

        def _parse_finished_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)

                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        finished_at = _parse_finished_at(d.pop("finished_at", UNSET))

        outbox_message_view = cls(
            outbox_id=outbox_id,
            to=to,
            subject=subject,
            status=status,
            attempts=attempts,
            queued_at=queued_at,
            installation_id=installation_id,
            text=text,
            html=html,
            last_error=last_error,
            next_attempt_at=next_attempt_at,
            finished_at=finished_at,
        )

        outbox_message_view.additional_properties = d
        return outbox_message_view

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
