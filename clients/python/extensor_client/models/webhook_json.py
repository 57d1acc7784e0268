from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.webhook_json_files import WebhookJsonFiles


T = TypeVar("T", bound="WebhookJson")


@_attrs_define
class WebhookJson:
    """The declaration and its code files as JSON strings.

    Attributes:
        yaml (str): The text of `webhook.yaml`.
        files (WebhookJsonFiles | Unset): The code files it names: relative path → source (at most 16; with
            the YAML at most 128 KiB).
    """

    yaml: str
    files: WebhookJsonFiles | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        yaml = self.yaml

        files: dict[str, Any] | Unset = UNSET
        if not isinstance(self.files, Unset):
            files = self.files.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "yaml": yaml,
            }
        )
        if files is not UNSET:
            field_dict["files"] = files

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.webhook_json_files import WebhookJsonFiles  # noqa: PLC0415

        d = dict(src_dict)
        yaml = d.pop("yaml")

        _files = d.pop("files", UNSET)
        files: WebhookJsonFiles | Unset
        if isinstance(_files, Unset):
            files = UNSET
        else:
            files = WebhookJsonFiles.from_dict(_files)

        webhook_json = cls(
            yaml=yaml,
            files=files,
        )

        return webhook_json
