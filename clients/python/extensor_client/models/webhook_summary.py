from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.webhook_status_name import WebhookStatusName
from ..types import UNSET, Unset

T = TypeVar("T", bound="WebhookSummary")


@_attrs_define
class WebhookSummary:
    """One webhook, without its source.

    Attributes:
        name (str):
        revision (int): 1 for the first declaration, +1 per change.
        status (WebhookStatusName):
        digest (str): `sha256:<hex>` over the YAML and the code files.
        on (list[str]): The event patterns it follows.
        files (list[str]): The code files applied with it (paths).
        declared_at (datetime.datetime): When it was first declared: earlier events are not delivered.
        updated_at (datetime.datetime):
        disabled_reason (None | str | Unset): Why it is disabled: an operator's reason, `410 Gone`, or a receiver
            that failed without a single success for the platform's period
            (default 5 days).
        description (None | str | Unset):
    """

    name: str
    revision: int
    status: WebhookStatusName
    digest: str
    on: list[str]
    files: list[str]
    declared_at: datetime.datetime
    updated_at: datetime.datetime
    disabled_reason: None | str | Unset = UNSET
    description: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        revision = self.revision

        status = self.status.value

        digest = self.digest

        on = self.on

        files = self.files

        declared_at = self.declared_at.isoformat()

        updated_at = self.updated_at.isoformat()

        disabled_reason: None | str | Unset
        if isinstance(self.disabled_reason, Unset):
            disabled_reason = UNSET
        else:
            disabled_reason = self.disabled_reason

        description: None | str | Unset
        if isinstance(self.description, Unset):
            description = UNSET
        else:
            description = self.description

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "name": name,
                "revision": revision,
                "status": status,
                "digest": digest,
                "on": on,
                "files": files,
                "declared_at": declared_at,
                "updated_at": updated_at,
            }
        )
        if disabled_reason is not UNSET:
            field_dict["disabled_reason"] = disabled_reason
        if description is not UNSET:
            field_dict["description"] = description

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        name = d.pop("name")

        revision = d.pop("revision")

        status = WebhookStatusName(d.pop("status"))

        digest = d.pop("digest")

        on = cast(list[str], d.pop("on"))

        files = cast(list[str], d.pop("files"))

        declared_at = datetime.datetime.fromisoformat(d.pop("declared_at"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        def _parse_disabled_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        disabled_reason = _parse_disabled_reason(d.pop("disabled_reason", UNSET))

        def _parse_description(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        description = _parse_description(d.pop("description", UNSET))

        webhook_summary = cls(
            name=name,
            revision=revision,
            status=status,
            digest=digest,
            on=on,
            files=files,
            declared_at=declared_at,
            updated_at=updated_at,
            disabled_reason=disabled_reason,
            description=description,
        )

        webhook_summary.additional_properties = d
        return webhook_summary

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
