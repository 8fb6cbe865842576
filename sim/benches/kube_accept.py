#!/usr/bin/env python3
"""kube-sim: how long accepting N Services takes (one POST each, plain HTTP on loopback).
Usage: python3 sim/benches/kube_accept.py target/debug/kube-sim 16000
LoadBalancer Services with allocateLoadBalancerNodePorts=false (a real cluster has 2,768 node ports)."""
import subprocess, sys, time, json, http.client, re
binary, n = sys.argv[1], int(sys.argv[2])
p = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--plain-http", "--admin-token", "t"], stdout=subprocess.PIPE, text=True)
line = p.stdout.readline()
host, port = re.search(r"http://([\d.]+):(\d+)", line).groups()
c = http.client.HTTPConnection(host, int(port))
t0 = time.time(); marks = {}
for i in range(n):
    body = json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}", "labels": {"panw-tg-port": str(20000 + i)}},
                       "spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False, "ports": [{"port": 80}]}})
    c.request("POST", "/api/v1/namespaces/default/services", body, {"Authorization": "Bearer t", "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 201, r.status
    if i + 1 in (1000, 4000, 16000): marks[i + 1] = round(time.time() - t0, 2)
print(json.dumps({"services": n, "seconds_at": marks}))
p.terminate()
