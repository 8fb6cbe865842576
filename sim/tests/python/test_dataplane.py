"""pan-os-python drives panorama-sim's managed firewalls (issue 15): rules are created in a
DeviceGroup's PreRulebase, pushed with commit-all, then each attached Firewall(serial=...) is
asked through Panorama (pan-os-python sends target=SERIAL) what its own data plane does."""

from panos.firewall import Firewall
from panos.objects import AddressObject
from panos.panorama import DeviceGroup
from panos.policies import NatRule, PreRulebase, SecurityRule

DG = "dp-dg"


def setup_dg(pano, sim):
    dg = DeviceGroup(DG)
    pano.add(dg)
    dg.create()
    fws = []
    for s in sim.serials:
        fw = Firewall(serial=s)
        dg.add(fw)
        fw.create()
        fws.append(fw)
    pre = PreRulebase()
    dg.add(pre)
    return dg, pre, fws


def test_firewalls_answer_policy_match_from_their_own_pushed_config(pano, sim):
    sim.control("POST", "writes/reset")
    dg, pre, fws = setup_dg(pano, sim)
    dg.add(AddressObject("web", type="fqdn", value="web.example.internal")).create()
    pre.add(
        NatRule("ours-nat", fromzone=["untrust"], tozone=["untrust"], source=["any"], destination=["10.100.1.10"],
                service="any", destination_translated_address="10.200.1.50")
    ).create()
    pre.add(SecurityRule("ours-deny", fromzone=["untrust"], tozone=["trust"], source=["any"], destination=["10.200.1.66"],
                         application=["any"], service=["any"], action="deny")).create()
    pre.add(SecurityRule("ours-web", fromzone=["untrust"], tozone=["trust"], source=["any"], destination=["web"],
                         application=["any"], service=["application-default"], action="allow")).create()
    assert pano.commit(sync=True)["success"]
    sim.control("POST", "faults", {"push_silently_ignored_by": [sim.serials[2]]})
    result = pano.commit_all(sync=True, sync_all=True, devicegroup=DG)
    assert result["success"], result
    sim.control("POST", "dns", {"web.example.internal": ["10.200.1.50"]})
    assert sim.control("GET", "dns") == {"web.example.internal": ["10.200.1.50"]}

    fw = fws[0]
    hit = fw.test_security_policy_match("198.51.100.7", "10.200.1.50", 6, port=443, from_zone="untrust", to_zone="trust")
    assert [h["name"] for h in hit] == ["ours-web"] and hit[0]["action"] == "allow"
    hit = fw.test_security_policy_match("198.51.100.7", "10.200.1.66", 6, port=443, from_zone="untrust", to_zone="trust")
    assert hit[0]["name"] == "ours-deny" and hit[0]["action"] == "deny"
    # an address the FQDN does not resolve to falls to the implicit interzone rule
    hit = fw.test_security_policy_match("198.51.100.7", "10.200.1.51", 6, port=443, from_zone="untrust", to_zone="trust")
    assert hit[0]["name"] == "interzone-default" and hit[0]["action"] == "deny"
    # the silently ignored device never got the rules
    hit = fws[2].test_security_policy_match("198.51.100.7", "10.200.3.50", 6, port=443, from_zone="untrust", to_zone="trust")
    assert hit[0]["name"] == "interzone-default"
    assert "ours-web" in sim.control("GET", "devices/%s/running" % sim.serials[0])
    assert "ours-web" not in sim.control("GET", "devices/%s/running" % sim.serials[2])

    # NAT: pan-os-ansible panos_match_rule reads result/rules/entry text, split on ';'
    nat = fw.op("<test><nat-policy-match><from>untrust</from><source>198.51.100.7</source><destination>10.100.1.10</destination>"
                "<destination-port>443</destination-port><protocol>6</protocol></nat-policy-match></test>", cmd_xml=False)
    assert nat.find("./result/rules/entry").text.split(";")[0] == "ours-nat"

    # show system info as the device (pan-os-python sends target=SERIAL through Panorama)
    info = fw.op("<show><system><info/></system></show>", cmd_xml=False)
    assert info.find("./result/system/serial").text == sim.serials[0]
    assert int(info.find("./result/system/vm-mem").text) <= 8192 * 1024
    assert info.find("./result/system/model").text == "PA-VM"


def test_disconnected_firewall_op_fails(pano, sim):
    _, _, fws = setup_dg(pano, sim)
    sim.control("POST", "faults", {"disconnected": [sim.serials[1]]})
    try:
        fws[1].op("<show><system><info/></system></show>", cmd_xml=False)
    except Exception as e:  # pan-os-python raises PanDeviceXapiError for status="error"
        assert "not connected" in str(e)
    else:
        raise AssertionError("op on a disconnected device succeeded")
    devices = {d.find("serial").text: d.find("connected").text for d in
               pano.op("<show><devices><all/></devices></show>", cmd_xml=False).findall("./result/devices/entry")}
    assert devices[sim.serials[1]] == "no" and devices[sim.serials[0]] == "yes"


def test_devices_can_be_replaced_with_interfaces_and_memory(pano, sim):
    sim.control("POST", "devices", [{"serial": sim.serials[0], "hostname": "fw-a", "ip": "10.0.0.11", "memory_mb": 16384,
                                      "interfaces": [{"name": "ethernet1/1", "zone": "untrust", "address": "10.0.1.10/24"},
                                                     {"name": "ethernet1/2", "zone": "trust", "address": "10.0.2.10/24"}]}])
    try:
        fw = Firewall(serial=sim.serials[0])
        pano.add(fw)
        info = fw.op("<show><system><info/></system></show>", cmd_xml=False)
        assert 15 * 1024 * 1024 < int(info.find("./result/system/vm-mem").text) <= 16384 * 1024
        fib = fw.op("<test><routing><fib-lookup><virtual-router>default</virtual-router><ip>10.0.2.99</ip></fib-lookup></routing></test>", cmd_xml=False)
        assert fib.find("./result/interface").text == "ethernet1/2"
    finally:
        sim.control("POST", "devices", [{"serial": s, "hostname": "fw-%02d" % (i + 1), "ip": "10.0.0.%d" % (11 + i)}
                                        for i, s in enumerate(sim.serials)])
