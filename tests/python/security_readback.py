"""Reads pano-eks's security policy back from a Panorama with pan-os-python (issue 19):
the device group's pre-rulebase security rules in order and its address groups, as pan-os-python
parses them (SecurityRule, AddressGroup with dynamic_value), printed as one JSON document.

usage: security_readback.py URL CA USER PASSWORD_ENV DEVICE_GROUP
TLS is verified against CA only (pan-python's default would skip verification)."""

import json
import os
import ssl
import sys
import urllib.parse

from panos.base import PanDevice
from panos.objects import AddressGroup
from panos.panorama import DeviceGroup, Panorama
from panos.policies import PreRulebase, SecurityRule


def main():
    url, ca, user, password_env, dg_name = sys.argv[1:6]
    ctx = ssl.create_default_context(cafile=ca)
    base = PanDevice.XapiWrapper

    class Verifying(base):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("ssl_context", ctx)
            base.__init__(self, *args, **kwargs)

    PanDevice.XapiWrapper = Verifying
    u = urllib.parse.urlparse(url)
    pano = Panorama(u.hostname, user, os.environ[password_env], port=u.port)
    dg = DeviceGroup(dg_name)
    pano.add(dg)
    pre = PreRulebase()
    dg.add(pre)
    rules = SecurityRule.refreshall(pre)
    groups = AddressGroup.refreshall(dg)
    out = {
        "rules": [
            {
                "name": r.name,
                "fromzone": r.fromzone,
                "tozone": r.tozone,
                "source": r.source,
                "destination": r.destination,
                "application": r.application,
                "service": r.service,
                "action": r.action,
                "group": r.group,
                "log_end": r.log_end,
                "tag": r.tag,
            }
            for r in rules
        ],
        "groups": [{"name": g.name, "dynamic_value": g.dynamic_value, "static_value": g.static_value, "tag": g.tag} for g in groups],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
