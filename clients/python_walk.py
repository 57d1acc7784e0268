"""The seed's walk with the generated Python client (clients/python).

A tenant, its owner token (no X-Tenant-Slug from then on: the token names
its tenant), the welcome-email plugin uploaded, enabled, given a secret, its
route called and a test event sent; the daily-kpi plugin's job run now; the
metrics read; a webhook applied as JSON (and as raw YAML, and checked as a
ZIP) and one delivery received here and verified with the standardwebhooks
package.

tests/contract.rs runs it against a live `extensor serve` with
EXTENSOR_URL, EXTENSOR_ADMIN_TOKEN, WALK_WELCOME_ZIP, WALK_JOB_ZIP and
WALK_WEBHOOK_DIR set, and PYTHONPATH=clients/python.
"""

import base64
import http.server
import io
import os
import pathlib
import queue
import threading
import time
import zipfile

import httpx
from extensor_client import AuthenticatedClient
from extensor_client.api.events import publish_event
from extensor_client.api.filters import test_event
from extensor_client.api.jobs import run_job_now
from extensor_client.api.plugins import enable_plugin, get_plugin_metrics, upload_plugin
from extensor_client.api.secrets import set_plugin_secret, set_tenant_secret
from extensor_client.api.status import metrics
from extensor_client.api.tenants import create_tenant
from extensor_client.api.webhooks import apply_webhook, get_webhook, list_webhook_deliveries
from extensor_client.models import (
    CreateTenant,
    PublishEvent,
    SecretValue,
    SetSecret,
    TestEvent,
    UploadPluginBody,
    WebhookJson,
    WebhookJsonFiles,
)
from extensor_client.types import File, Response
from standardwebhooks.webhooks import Webhook

URL = os.environ["EXTENSOR_URL"]
ADMIN = os.environ["EXTENSOR_ADMIN_TOKEN"]


def ok(response: Response, *statuses: int):
    """The parsed body of an answer with one of `statuses`; else stop."""
    if response.status_code not in statuses:
        raise SystemExit(f"expected {statuses}, got {response.status_code}: {response.content!r}")
    return response.parsed


def step(name: str) -> None:
    print(f"walk: {name}", flush=True)


class Receiver(http.server.BaseHTTPRequestHandler):
    """Takes webhook deliveries on loopback."""

    received: "queue.Queue[tuple[dict[str, str], bytes]]" = queue.Queue()

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.put(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    admin = AuthenticatedClient(base_url=URL, token=ADMIN)
    step("tenant")
    created = ok(create_tenant.sync_detailed(client=admin, body=CreateTenant(slug="walk", name="Walk")), 201)
    owner = AuthenticatedClient(base_url=URL, token=created.owner_token.token)

    step("upload, enable")
    zip_bytes = pathlib.Path(os.environ["WALK_WELCOME_ZIP"]).read_bytes()
    upload = UploadPluginBody(file=File(payload=zip_bytes, file_name="welcome-email.zip"))
    up = ok(upload_plugin.sync_detailed(client=owner, body=upload), 201)
    plugin = up.plugin.id
    ok(enable_plugin.sync_detailed(plugin, client=owner), 200)

    step("secret")
    secret = SetSecret(key="WELCOME_EMAIL_TEMPLATE", value="Hello {{first_name}}")
    ok(set_plugin_secret.sync_detailed(plugin, client=owner, body=secret), 200)

    step("route")
    pong = httpx.get(f"{URL}/ext/welcome-email/ping", headers={"Authorization": f"Bearer {owner.token}"})
    assert pong.json() == {"status": "ok", "plugin": "welcome-email"}, pong.text

    step("test event")
    data = {"user": {"first_name": "Ada"}}
    runs = ok(test_event.sync_detailed(client=owner, body=TestEvent(event_type="auth.user.created", event_data=data)), 200)
    assert runs.runs[0].slug == "welcome-email", runs

    step("job run-now")
    kpi = File(payload=pathlib.Path(os.environ["WALK_JOB_ZIP"]).read_bytes(), file_name="daily-kpi.zip")
    kpi_id = ok(upload_plugin.sync_detailed(client=owner, body=UploadPluginBody(file=kpi)), 201).plugin.id
    ok(enable_plugin.sync_detailed(kpi_id, client=owner), 200)
    run = ok(run_job_now.sync_detailed(kpi_id, "compute_daily_kpis", client=owner, wait_ms=60_000), 200)
    assert run.status.value == "succeeded", run

    step("metrics")
    counted = {p.slug: p for p in ok(get_plugin_metrics.sync_detailed(client=owner), 200).plugins}
    assert counted["welcome-email"].invocations >= 2, counted  # the route and the hook
    assert counted["daily-kpi"].invocations >= 1, counted  # the job
    text = metrics.sync_detailed(client=admin).content.decode()
    assert "extensor_http_requests_total" in text

    step("webhook apply")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    signing_key = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    receiver = f"http://127.0.0.1:{server.server_address[1]}/hook"
    for key, value in [("WEBHOOK_URL", receiver), ("WEBHOOK_SIGNING_KEY", signing_key)]:
        ok(set_tenant_secret.sync_detailed(key, client=owner, body=SecretValue(value=value)), 200)
    folder = pathlib.Path(os.environ["WALK_WEBHOOK_DIR"])
    transform = "transforms/build_completed.js"
    files = WebhookJsonFiles.from_dict({transform: (folder / transform).read_text()})
    body = WebhookJson(yaml=(folder / "webhook.yaml").read_text(), files=files)
    applied = ok(apply_webhook.sync_detailed("builds", client=owner, body=body), 201)
    assert applied.revision == 1, applied

    step("webhook apply as raw YAML and as a ZIP")
    # A `str` body is sent as `application/yaml`, a `File` as `application/zip`.
    plain = (
        "api_version: v1\n"
        'description: "Applied as plain YAML"\n'
        'on: ["walk.plain.*"]\n'
        'delivery: {url: "${SECRET:WEBHOOK_URL}"}\n'
    )
    applied = ok(apply_webhook.sync_detailed("plain-yaml", client=owner, body=plain), 201)
    assert (applied.revision, applied.change.value) == (1, "created"), applied
    view = ok(get_webhook.sync_detailed("plain-yaml", client=owner), 200)
    assert view.yaml == plain and view.description == "Applied as plain YAML", view
    again = ok(apply_webhook.sync_detailed("plain-yaml", client=owner, body=plain), 200)
    assert (again.revision, again.change.value) == (1, "unchanged"), again
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("webhook.yaml", (folder / "webhook.yaml").read_text())
        z.writestr(transform, (folder / transform).read_text())
    zipped = File(payload=archive.getvalue(), file_name="builds.zip")
    checked = ok(apply_webhook.sync_detailed("builds", client=owner, body=zipped, dry_run=True), 200)
    assert (checked.dry_run, checked.change.value) == (True, "unchanged"), checked

    step("webhook delivery")
    event = {"build": 7, "branch": "main", "status": "success"}
    ok(publish_event.sync_detailed(client=owner, body=PublishEvent(event_type="build.completed", event_data=event)), 201)
    headers, payload = Receiver.received.get(timeout=30)
    Webhook(signing_key).verify(payload, headers)
    assert b"Build 7 on main: success" in payload, payload
    deadline = time.monotonic() + 30
    while True:
        page = ok(list_webhook_deliveries.sync_detailed("builds", client=owner), 200)
        if page.deliveries and page.deliveries[0].status.value == "delivered":
            break
        assert time.monotonic() < deadline, page
        time.sleep(0.1)
    server.shutdown()
    step("done")


if __name__ == "__main__":
    main()
