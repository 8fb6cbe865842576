"""pytest fixtures: start panorama-sim on 127.0.0.1:0 with real TLS and hand tests its address,
CA and credentials. The binary comes from $PANORAMA_SIM_BIN, else `cargo build` is run and
${CARGO_TARGET_DIR:-<repo>/target}/debug/panorama-sim is used."""

import json
import os
import pathlib
import ssl
import subprocess
import tempfile
import urllib.request

import pan.xapi
import pytest
from panos.base import PanDevice

REPO = pathlib.Path(__file__).resolve().parents[3]
ADMIN = ("admin", "admin-Passw0rd")
ADMIN2 = ("admin2", "other-Passw0rd")
DEVICES = 3


def sim_binary():
    b = os.environ.get("PANORAMA_SIM_BIN")
    if b:
        return b
    subprocess.run(
        ["cargo", "build", "-q", "-p", "pano-eks-sim", "--bin", "panorama-sim"],
        cwd=REPO,
        check=True,
    )
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    if not target.is_absolute():
        target = REPO / target
    return str(target / "debug" / "panorama-sim")


class Sim:
    def __init__(self, proc, host, port, ca, workdir):
        self.proc, self.host, self.port, self.ca, self.workdir = proc, host, port, ca, workdir
        self.url = "https://%s:%d" % (host, port)
        self.ssl_context = ssl.create_default_context(cafile=ca)
        self.admin, self.admin2 = ADMIN, ADMIN2
        self.serials = ["00790%07d" % i for i in range(1, DEVICES + 1)]

    def control(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/_sim/" + path, data=data, method=method)
        with urllib.request.urlopen(req, context=self.ssl_context, timeout=10) as r:
            raw = r.read()
            return json.loads(raw) if r.headers.get("content-type", "").startswith("application/json") else raw.decode()

    def stats(self):
        return self.control("GET", "stats")


def _spawn(extra=()):
    workdir = tempfile.mkdtemp(prefix="panorama-sim-")
    ca = os.path.join(workdir, "ca.pem")
    proc = subprocess.Popen(
        [
            sim_binary(),
            "--listen", "127.0.0.1:0",
            "--tls-cert-out", ca,
            "--admin", "%s:%s" % ADMIN,
            "--admin", "%s:%s" % ADMIN2,
            "--devices", str(DEVICES),
            "--job-step-ms", "50",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("panorama-sim listening on https://"), line
        hostport = line.rsplit("//", 1)[1]
        host, port = hostport.rsplit(":", 1)
        yield Sim(proc, host, int(port), ca, workdir)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def sim():
    yield from _spawn()


@pytest.fixture(scope="session")
def sim11():
    """A second sim on the 11.x profile (partial-xpath writes are left behind)."""
    yield from _spawn(["--sw-version", "11.1.6"])


@pytest.fixture(autouse=True)
def fresh(request):
    """Every test starts from the startup state (keys stay valid)."""
    if "sim" in request.fixturenames:
        request.getfixturevalue("sim").control("POST", "reset")
    yield


@pytest.fixture
def verified_tls(sim, monkeypatch):
    """pan-os-python does not expose pan-python's ssl_context, so wrap its XapiWrapper to pass
    one that trusts only the sim's CA (by default pan-python skips verification)."""
    base = PanDevice.XapiWrapper
    ctx = sim.ssl_context

    class Verifying(base):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("ssl_context", ctx)
            base.__init__(self, *args, **kwargs)

    monkeypatch.setattr(PanDevice, "XapiWrapper", Verifying)
    return ctx


@pytest.fixture
def pano(sim, verified_tls):
    from panos.panorama import Panorama

    p = Panorama(sim.host, ADMIN[0], ADMIN[1], port=sim.port)
    assert p.api_key  # property: keygen on first use
    return p
