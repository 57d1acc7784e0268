from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.change_name import ChangeName
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.webhook_summary import WebhookSummary


T = TypeVar("T", bound="ApplyResult")


@_attrs_define
class ApplyResult:
    """What an apply did (or, for a dry run, would do).

    Attributes:
        name (str):
        change (ChangeName):
        dry_run (bool): Whether nothing was recorded.
        revision (int): The revision current after the apply (for a dry run: after it would be).
        webhook (None | Unset | WebhookSummary): The webhook as recorded; absent for a dry run of a new webhook.
    """

    name: str
    change: ChangeName
    dry_run: bool
    revision: int
    webhook: None | Unset | WebhookSummary = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.webhook_summary import WebhookSummary  # noqa: PLC0415

        name = self.name

        change = self.change.value

        dry_run = self.dry_run

        revision = self.revision

        webhook: dict[str, Any] | None | Unset
        if isinstance(self.webhook, Unset):
            webhook = UNSET
        elif isinstance(self.webhook, WebhookSummary):
            webhook = self.webhook.to_dict()
        else:
            webhook = self.webhook

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "name": name,
                "change": change,
                "dry_run": dry_run,
                "revision": revision,
            }
        )
        if webhook is not UNSET:
            field_dict["webhook"] = webhook

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.webhook_summary import WebhookSummary  # noqa: PLC0415

        d = dict(src_dict)
        name = d.pop("name")

        change = ChangeName(d.pop("change"))

        dry_run = d.pop("dry_run")

        revision = d.pop("revision")

        def _parse_webhook(data: object) -> None | Unset | WebhookSummary:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                webhook_type_1 = WebhookSummary.from_dict(data)

                return webhook_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Unset | WebhookSummary, data)

        webhook = _parse_webhook(d.pop("webhook", UNSET))

        apply_result = cls(
            name=name,
            change=change,
            dry_run=dry_run,
            revision=revision,
            webhook=webhook,
        )

        apply_result.additional_properties = d
        return apply_result

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
