"""One image with a secret planted in every place the detector looks, shared by the scan tests.

The secrets come from a seeded RNG (tests/fakecreds.py); `EXPECTED` says where each file finding must be
reported: (location, layer index, line).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tests import fakecreds
from tests import scanimages as si


@dataclass(frozen=True)
class Leaks:
    file: str
    deleted: str
    opaque_deleted: str
    overwritten: str
    nested: str
    env: str
    label: str
    history: str
    cmd: str

    def all(self) -> list[str]:
        return [getattr(self, name) for name in self.__dataclass_fields__]


EXPECTED = {
    # path: (location, layer_index, line)
    "srv/app/.env": ("file", 0, 3),
    "root/.slack": ("deleted_file", 0, 1),
    "opt/cache/stripe.env": ("deleted_file", 0, 1),
    "etc/gitlab.env": ("overwritten_file", 0, 2),
    "opt/lib/app.jar!BOOT-INF/classes/application.properties": ("file", 1, 2),
}


def leaky_image(leaks: Leaks, compression: str = "gzip") -> si.BuiltImage:
    jar = si.make_zip({"BOOT-INF/classes/application.properties": f"server.port=8080\nnpm.token={leaks.nested}\n"})
    return si.build_image(
        [
            [
                si.file("srv/app/.env", f"# app\nLOG=info\nGITHUB_TOKEN={leaks.file}\n"),
                si.file("root/.slack", f"token: {leaks.deleted}\n"),
                si.file("opt/cache/stripe.env", f"STRIPE_KEY={leaks.opaque_deleted}\n"),
                si.file("etc/gitlab.env", f"# ci\nGITLAB_TOKEN={leaks.overwritten}\n"),
            ],
            [si.file("opt/lib/app.jar", jar), si.whiteout("root/.slack")],
            [si.opaque("opt/cache"), si.file("etc/gitlab.env", "GITLAB_TOKEN=${CI_JOB_TOKEN}\n")],
        ],
        compression=compression,
        env=["PATH=/usr/local/bin:/usr/bin", f"AWS_ACCESS_KEY_ID={leaks.env}"],
        labels={"org.opencontainers.image.title": "app", "deploy.token": leaks.label},
        cmd=["/srv/app/run", "--api-key", leaks.cmd],
        history=[
            {"created_by": "ADD rootfs.tar /"},
            {"created_by": f"/bin/sh -c curl -H 'token: {leaks.history}' https://ci.internal/jar -o app.jar"},
            {"created_by": "/bin/sh -c rm -rf /opt/cache"},
        ],
    )


def plant_leaks(seed: int) -> Leaks:
    rng = random.Random(seed)
    return Leaks(
        file=fakecreds.fake_github_token(rng),
        deleted=fakecreds.fake_slack_token(rng),
        opaque_deleted=fakecreds.fake_stripe_secret_key(rng),
        overwritten=fakecreds.fake_gitlab_token(rng),
        nested=fakecreds.fake_npm_token(rng),
        env=fakecreds.fake_aws_access_key_id(rng),
        label=fakecreds.fake_sendgrid_api_key(rng),
        history=fakecreds.fake_github_token(rng),
        cmd=fakecreds.fake_openai_api_key(rng),
    )
