"""pan-os-python (a client nobody here wrote) against panorama-sim, over verified TLS."""

import ssl
import xml.etree.ElementTree as ET

import pytest
from panos import errors as err
from panos.base import PanDevice
from panos.network import StaticRoute, VirtualRouter
from panos.objects import AddressObject, ServiceObject, Tag
from panos.panorama import (
    DeviceGroup,
    Panorama,
    PanoramaCommitAll,
    Template,
    TemplateStack,
)
from panos.firewall import Firewall
from panos.policies import NatRule, PreRulebase

DG = "k8s-dg"
TPL = "k8s-tpl"
STACK = "k8s-stack"


def running(sim):
    return ET.fromstring(sim.control("GET", "config?which=running"))


def dg_xpath(name=DG):
    return "./devices/entry[@name='localhost.localdomain']/device-group/entry[@name='%s']" % name


def make_dg(pano, sim, members=True):
    dg = DeviceGroup(DG)
    pano.add(dg)
    dg.create()
    if members:
        for s in sim.serials:
            fw = Firewall(serial=s)
            dg.add(fw)
            fw.create()
    return dg


# --- auth and TLS -------------------------------------------------------------------------


def test_keygen_returns_key_over_verified_tls(pano, sim):
    assert pano.api_key.startswith("LUFRPT")
    info = pano.refresh_system_info()
    assert info.version == "10.2.9"
    assert sim.stats()["requests"]["keygen"] >= 1


def test_keygen_bad_password_is_403_invalid_credential(sim, verified_tls):
    p = Panorama(sim.host, "admin", "wrong", port=sim.port)
    with pytest.raises(err.PanURLError) as e:
        p.api_key
    assert "403" in str(e.value) and "Invalid Credential" in str(e.value)


def test_bad_api_key_is_403(sim, verified_tls):
    p = Panorama(sim.host, api_key="LUFRPTbogus==", port=sim.port)
    with pytest.raises(err.PanURLError) as e:
        p.refresh_system_info()
    assert "Invalid Credential" in str(e.value)


def test_tls_verification_rejects_untrusted_ca(sim, monkeypatch):
    """With a context that does not trust the sim's CA the handshake must fail: proves the
    other tests really verify the certificate."""
    base = __import__("panos.base", fromlist=["PanDevice"]).PanDevice
    orig = base.XapiWrapper

    class Untrusting(orig):
        def __init__(self, *a, **kw):
            kw.setdefault("ssl_context", ssl.create_default_context())
            orig.__init__(self, *a, **kw)

    monkeypatch.setattr(base, "XapiWrapper", Untrusting)
    p = Panorama(sim.host, sim.admin[0], sim.admin[1], port=sim.port)
    with pytest.raises(err.PanURLError) as e:
        p.api_key
    assert "CERTIFICATE_VERIFY_FAILED" in str(e.value)


# --- objects: create / refresh / update / delete ----------------------------------------


def test_tag_address_service_crud(pano, sim):
    dg = make_dg(pano, sim, members=False)
    tag = Tag("pano-eks", color="color3", comments="managed")
    dg.add(tag)
    tag.create()
    addr = AddressObject("k8s-shop-web", value="internal-abc.us-west-2.elb.amazonaws.com", type="fqdn", tag=["pano-eks"])
    dg.add(addr)
    addr.create()
    svc = ServiceObject("k8s-tcp-8080", protocol="tcp", destination_port="8080", tag=["pano-eks"])
    dg.add(svc)
    svc.create()

    # refresh from the candidate config
    a2 = AddressObject("k8s-shop-web")
    dg.add(a2)
    a2.refresh()
    assert (a2.type, a2.value, a2.tag) == ("fqdn", "internal-abc.us-west-2.elb.amazonaws.com", ["pano-eks"])
    s2 = ServiceObject("k8s-tcp-8080")
    dg.add(s2)
    s2.refresh()
    assert (s2.protocol, s2.destination_port) == ("tcp", "8080")
    t2 = Tag("pano-eks")
    dg.add(t2)
    t2.refresh()
    assert t2.color == "color3"

    # update one field (edit on the field's xpath) and the whole object (apply = edit)
    addr.description = "shop/web"
    addr.update("description")
    svc.destination_port = "8080,8443"
    svc.apply()
    a2.refresh()
    s2.refresh()
    assert a2.description == "shop/web"
    assert s2.destination_port == "8080,8443"

    # refreshall sees all three kinds
    assert [o.name for o in AddressObject.refreshall(dg, add=False)] == ["k8s-shop-web"]

    addr.delete()
    svc.delete()
    tag.delete()
    a3 = AddressObject("k8s-shop-web")
    dg.add(a3)
    with pytest.raises(err.PanObjectMissing):
        a3.refresh()
    st = sim.stats()
    assert st["write_ops"] >= 9 and st["requests"]["config.delete"] == 3


def test_nat_rule_with_dynamic_destination_translation(pano, sim):
    dg = make_dg(pano, sim, members=False)
    for o in (
        Tag("pano-eks", color="color3"),
        AddressObject("k8s-shop-web", value="internal-abc.elb.amazonaws.com", type="fqdn"),
        ServiceObject("k8s-tcp-8080", protocol="tcp", destination_port="8080"),
    ):
        dg.add(o)
        o.create()
    rb = PreRulebase()
    dg.add(rb)
    rule = NatRule(
        "k8s-shop-web-in",
        fromzone=["untrust"],
        tozone=["untrust"],
        source=["any"],
        destination=["10.0.1.10"],
        service="k8s-tcp-8080",
        source_translation_type="dynamic-ip-and-port",
        source_translation_address_type="interface-address",
        source_translation_interface="ethernet1/2",
        destination_dynamic_translated_address="k8s-shop-web",
        destination_dynamic_translated_port=8080,
        destination_dynamic_translated_distribution="round-robin",
        tag=["pano-eks"],
    )
    rb.add(rule)
    rule.create()

    r2 = NatRule("k8s-shop-web-in")
    rb.add(r2)
    r2.refresh()
    assert r2.destination_dynamic_translated_address == "k8s-shop-web"
    assert int(r2.destination_dynamic_translated_port) == 8080
    assert r2.service == "k8s-tcp-8080"
    assert r2.tozone == ["untrust"]
    assert r2.uuid  # PAN-OS 9.0+ assigns rule uuids

    rule.description = "shop/web"
    rule.apply()
    r2.refresh()
    assert r2.description == "shop/web"
    rule.delete()
    r3 = NatRule("k8s-shop-web-in")
    rb.add(r3)
    with pytest.raises(err.PanObjectMissing):
        r3.refresh()


def test_static_route_in_template_vr_default(pano, sim):
    tpl = Template(TPL)
    pano.add(tpl)
    tpl.create()
    vr = VirtualRouter("vr-default")
    tpl.add(vr)
    vr.create()
    route = StaticRoute("k8s-10.0.16.0_20", destination="10.0.16.0/20", nexthop_type="ip-address", nexthop="10.0.1.1", interface="ethernet1/2", metric=10)
    vr.add(route)
    route.create()
    r2 = StaticRoute("k8s-10.0.16.0_20")
    vr.add(r2)
    r2.refresh()
    assert (r2.destination, r2.nexthop, r2.interface) == ("10.0.16.0/20", "10.0.1.1", "ethernet1/2")
    route.metric = 20
    route.update("metric")
    r2.refresh()
    assert int(r2.metric) == 20
    route.delete()
    cand = sim.control("GET", "config?which=candidate")
    assert "k8s-10.0.16.0_20" not in cand


def test_create_similar_and_delete_similar_in_bulk(pano, sim):
    dg = make_dg(pano, sim, members=False)
    before = sim.stats()["write_calls"]
    objs = [AddressObject("bulk-%03d" % i, value="10.1.%d.%d" % (i // 256, i % 256)) for i in range(150)]
    for o in objs:
        dg.add(o)
    objs[0].create_similar()
    after_create = sim.stats()
    assert after_create["write_calls"] - before == 1  # one set with all entries
    assert len(AddressObject.refreshall(dg, add=False)) == 150
    objs[0].delete_similar()
    assert AddressObject.refreshall(dg, add=False) == []
    assert sim.stats()["write_calls"] - after_create["write_calls"] >= 1


# --- commits and pushes -------------------------------------------------------------------


def test_commit_sync_and_no_changes(pano, sim):
    make_dg(pano, sim)
    result = pano.commit(sync=True)
    assert result["success"] and result["result"] == "OK"
    assert running(sim).find(dg_xpath()) is not None
    # nothing left: pan-os-python returns None when there is no job
    assert pano.commit(sync=True) is None
    assert sim.stats()["commits"] == 1


def test_partial_commit_after_create_sweeps_in_other_admins_changes(pano, sim):
    """pan-os-python create() sets on the container xpath (`.../device-group` with the entry):
    a partial-xpath write. The written node is the writer's change, so the writer's partial
    commit takes the whole container, the other admin's pending entry included
    (pan-os-ansible#628, pan-os-python#331/#570)."""
    other = Panorama(sim.host, sim.admin2[0], sim.admin2[1], port=sim.port)
    assert other.api_key
    dg_theirs = DeviceGroup("theirs")
    other.add(dg_theirs)
    dg_theirs.create()
    dg_mine = DeviceGroup("mine")
    pano.add(dg_mine)
    dg_mine.create()
    result = pano.commit(sync=True, admins=[sim.admin[0]])
    assert result["success"]
    run = running(sim)
    assert run.find(dg_xpath("mine")) is not None
    assert run.find(dg_xpath("theirs")) is not None  # swept in
    assert not pano.pending_changes()
    writes = sim.control("GET", "writes")
    assert [w["xpath"].rsplit("/", 1)[-1] for w in writes if w["action"] == "set"] == ["device-group", "device-group"]


def test_partial_commit_after_apply_keeps_other_admins_changes_pending(pano, sim):
    """apply() edits the entry's own xpath (a full-xpath write): only that entry is the
    writer's, so the other admin's change stays pending."""
    other = Panorama(sim.host, sim.admin2[0], sim.admin2[1], port=sim.port)
    assert other.api_key
    dg_theirs = DeviceGroup("theirs")
    other.add(dg_theirs)
    dg_theirs.apply()
    dg_mine = DeviceGroup("mine")
    pano.add(dg_mine)
    dg_mine.apply()
    assert pano.commit(sync=True, admins=[sim.admin[0]])["success"]
    run = running(sim)
    assert run.find(dg_xpath("mine")) is not None
    assert run.find(dg_xpath("theirs")) is None  # admin2's change stays pending
    assert pano.pending_changes()
    assert other.commit(sync=True, admins=[sim.admin2[0]])["success"]
    assert running(sim).find(dg_xpath("theirs")) is not None
    assert not pano.pending_changes()


def test_commit_all_device_group_with_per_device_results(pano, sim):
    make_dg(pano, sim)
    assert pano.commit(sync=True)["success"]
    result = pano.commit_all(sync=True, sync_all=True, devicegroup=DG, description="push")
    assert result["success"]
    assert sorted(result["devices"]) == sorted(sim.serials)
    assert all(d["success"] and d["result"] == "OK" for d in result["devices"].values())
    assert sim.stats()["pushes"] == 1


def test_commit_all_template_stack(pano, sim):
    tpl = Template(TPL)
    pano.add(tpl)
    tpl.create()
    stack = TemplateStack(STACK, templates=[TPL], devices=sim.serials[:2])
    pano.add(stack)
    stack.create()
    assert pano.commit(sync=True)["success"]
    cmd = PanoramaCommitAll("template stack", STACK, description="stack push")
    result = pano.commit(cmd=cmd, sync=True, sync_all=True)
    assert result["success"]
    assert sorted(result["devices"]) == sorted(sim.serials[:2])


def test_push_failure_on_one_device(pano, sim):
    make_dg(pano, sim)
    pano.commit(sync=True)
    sim.control("POST", "faults", {"fail_push_serial": sim.serials[1], "fail_push_message": "vsys1: zone untrust missing"})
    result = pano.commit_all(sync=True, sync_all=True, devicegroup=DG)
    assert not result["success"] and result["result"] == "FAIL"
    assert not result["devices"][sim.serials[1]]["success"]
    assert result["devices"][sim.serials[0]]["success"]


def test_commit_failure_raises_with_exception_flag(pano, sim):
    make_dg(pano, sim)
    sim.control("POST", "faults", {"fail_commit": "shared -> address is invalid"})
    with pytest.raises(err.PanCommitFailed):
        pano.commit(sync=True, exception=True)


# --- error cases a real Panorama raises ---------------------------------------------------


def test_dangling_reference_is_refused(pano, sim):
    dg = make_dg(pano, sim, members=False)
    addr = AddressObject("web", value="10.0.0.1", tag=["no-such-tag"])
    dg.add(addr)
    with pytest.raises(err.PanDeviceXapiError) as e:
        addr.create()
    assert "is not a valid reference" in str(e.value)
    rb = PreRulebase()
    dg.add(rb)
    rule = NatRule("r1", fromzone=["untrust"], tozone=["untrust"], source=["any"], destination=["any"],
                   service="no-such-service")
    rb.add(rule)
    with pytest.raises(err.PanDeviceXapiError) as e:
        rule.create()
    assert "no-such-service" in str(e.value)
    # nothing was written
    assert "no-such" not in sim.control("GET", "config?which=candidate")


def test_over_long_name_is_refused(pano, sim):
    dg = make_dg(pano, sim, members=False)
    addr = AddressObject("a" * 64, value="10.0.0.1")
    dg.add(addr)
    with pytest.raises(err.PanDeviceXapiError) as e:
        addr.create()
    assert "at most 63 characters" in str(e.value)
    ok = AddressObject("a" * 63, value="10.0.0.1")
    dg.add(ok)
    ok.create()


def test_static_route_name_limit_is_31(pano, sim):
    tpl = Template(TPL)
    pano.add(tpl)
    vr = VirtualRouter("vr-default")
    tpl.add(vr)
    route = StaticRoute("r" * 32, destination="10.0.0.0/8", nexthop_type="ip-address", nexthop="10.0.1.1")
    vr.add(route)
    with pytest.raises(err.PanDeviceXapiError):
        route.create()


def test_vm_auth_key(pano):
    k = pano.generate_vm_auth_key(24)
    assert k["authkey"].isdigit()
    assert [x["authkey"] for x in pano.get_vm_auth_keys()] == [k["authkey"]]


def test_show_devices_connected(pano, sim):
    fws = pano.refresh_devices(only_connected=True, expand_vsys=False, include_device_groups=False)
    serials = sorted(fw.serial for fw in fws)
    assert serials == sorted(sim.serials)


def test_config_lock_held_by_other_admin(pano, sim):
    sim.control("POST", "faults", {"config_lock_by": "bob"})
    with pytest.raises(err.PanLockError):
        pano.add_config_lock()
    dg = DeviceGroup(DG)
    pano.add(dg)
    with pytest.raises(err.PanLockError) as e:
        dg.create()
    assert "Configuration is locked by bob" in str(e.value)
    sim.control("POST", "faults", {"config_lock_by": ""})
    assert pano.add_config_lock()
    assert pano.remove_config_lock()


# --- where Panorama refuses (facts §11) -------------------------------------------------


def test_delete_of_a_referenced_address_is_refused(pano, sim):
    from panos.policies import SecurityRule

    dg = make_dg(pano, sim, members=False)
    addr = AddressObject("k8s-shop-web", value="10.0.0.5")
    dg.add(addr)
    addr.create()
    rb = PreRulebase()
    dg.add(rb)
    rule = SecurityRule("foreign", fromzone=["any"], tozone=["any"], source=["any"], destination=["k8s-shop-web"], action="allow")
    rb.add(rule)
    rule.create()
    with pytest.raises(err.PanDeviceXapiError) as e:
        addr.delete()
    msg = str(e.value)
    assert "k8s-shop-web cannot be deleted because of references from:" in msg
    assert "pre-rulebase -> security -> rules -> foreign -> destination" in msg
    rule.delete()
    addr.delete()
    a2 = AddressObject("k8s-shop-web")
    dg.add(a2)
    with pytest.raises(err.PanObjectMissing):
        a2.refresh()


def test_a_second_keygen_ends_the_first_key(pano, sim):
    sim.control("POST", "faults", {"keygen_rotates": True})  # the reset of the next test turns it off
    again = Panorama(sim.host, sim.admin[0], sim.admin[1], port=sim.port)
    assert again.api_key != pano.api_key
    with pytest.raises(err.PanURLError) as e:
        pano.refresh_system_info()
    assert "Invalid Credential" in str(e.value)
    assert again.refresh_system_info().version == "10.2.9"


def test_show_clock_and_system_time(pano, sim):
    clock = pano.op("show clock", xml=True).decode()
    text = ET.fromstring(clock).find("./result").text
    assert text.endswith("\n") and len(text.split()) == 6 and text.split()[4] == "UTC"
    info = ET.fromstring(pano.op("show system info", xml=True).decode())
    assert len(info.find("./result/system/time").text.split()) == 5


def test_refuse_writes_fault_reaches_pan_os_python(pano, sim):
    sim.control("POST", "faults", {"refuse_writes": [{"name_glob": "demo.in.*frontend*", "message": "refused for the test"}]})
    try:
        dg = make_dg(pano, sim, members=False)
        bad = AddressObject("demo.in.shop-frontend", value="10.0.0.6")
        dg.add(bad)
        with pytest.raises(err.PanDeviceXapiError) as e:
            bad.create()
        assert "refused for the test" in str(e.value)
        ok = AddressObject("demo.in.shop-backend", value="10.0.0.7")
        dg.add(ok)
        ok.create()
    finally:
        sim.control("POST", "faults", {"refuse_writes": None})
    writes = sim.control("GET", "writes")
    assert [w["refused"] for w in writes if w["element_names"] and w["element_names"][0].startswith("demo.in.")] == [True, False]


def test_on_11_x_a_create_is_left_behind_by_the_admins_partial_commit(sim11, monkeypatch):
    """pan-os-python#570 (strict reading on the 11.x profile): create() is a partial-xpath set,
    and the admin's partial commit does not carry it; apply() (full xpath) is carried."""
    sim11.control("POST", "reset")
    orig = PanDevice.XapiWrapper
    ctx = sim11.ssl_context

    class Verifying(orig):
        def __init__(self, *a, **kw):
            kw.setdefault("ssl_context", ctx)
            orig.__init__(self, *a, **kw)

    monkeypatch.setattr(PanDevice, "XapiWrapper", Verifying)
    p = Panorama(sim11.host, sim11.admin[0], sim11.admin[1], port=sim11.port)
    assert p.refresh_system_info().version == "11.1.6"
    created = DeviceGroup("created")
    p.add(created)
    created.create()
    with pytest.raises(err.PanCommitNotNeeded):
        p.commit(sync=True, exception=True, admins=[sim11.admin[0]])
    assert running(sim11).find(dg_xpath("created")) is None
    assert p.pending_changes()
    applied = DeviceGroup("applied")
    p.add(applied)
    applied.apply()
    assert p.commit(sync=True, admins=[sim11.admin[0]])["success"]
    run = running(sim11)
    assert run.find(dg_xpath("applied")) is not None and run.find(dg_xpath("created")) is None
    assert p.commit(sync=True)["success"]  # a full commit takes it
    assert running(sim11).find(dg_xpath("created")) is not None

