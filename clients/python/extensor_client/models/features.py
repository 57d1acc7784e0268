from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Features")


@_attrs_define
class Features:
    """
    Attributes:
        extensibility (bool):
        plugins (bool):
        webhooks_as_code (bool):
        app_scripts (bool):
    """

    extensibility: bool
    plugins: bool
    webhooks_as_code: bool
    app_scripts: bool
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        extensibility = self.extensibility

        plugins = self.plugins

        webhooks_as_code = self.webhooks_as_code

        app_scripts = self.app_scripts

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "extensibility": extensibility,
                "plugins": plugins,
                "webhooks_as_code": webhooks_as_code,
                "app_scripts": app_scripts,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        extensibility = d.pop("extensibility")

        plugins = d.pop("plugins")

        webhooks_as_code = d.pop("webhooks_as_code")

        app_scripts = d.pop("app_scripts")

        features = cls(
            extensibility=extensibility,
            plugins=plugins,
            webhooks_as_code=webhooks_as_code,
            app_scripts=app_scripts,
        )

        features.additional_properties = d
        return features

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
