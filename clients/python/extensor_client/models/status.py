from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.extensibility import Extensibility
    from ..models.features import Features


T = TypeVar("T", bound="Status")


@_attrs_define
class Status:
    """
    Attributes:
        tenant (str):
        features (Features):
        extensibility (Extensibility):
    """

    tenant: str
    features: Features
    extensibility: Extensibility
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        tenant = self.tenant

        features = self.features.to_dict()

        extensibility = self.extensibility.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "tenant": tenant,
                "features": features,
                "extensibility": extensibility,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.extensibility import Extensibility  # noqa: PLC0415
        from ..models.features import Features  # noqa: PLC0415

        d = dict(src_dict)
        tenant = d.pop("tenant")

        features = Features.from_dict(d.pop("features"))

        extensibility = Extensibility.from_dict(d.pop("extensibility"))

        status = cls(
            tenant=tenant,
            features=features,
            extensibility=extensibility,
        )

        status.additional_properties = d
        return status

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
