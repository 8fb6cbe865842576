"""moto_server for the lab: every bridge of tests/moto/moto_pano.py, plus one the lab needs.

Lab bridge (moto 5.2.5): ModifyNetworkInterfaceAttribute ignores `Attachment.DeleteOnTermination`.
The firewall lifecycle lambda (which the lab runs against moto, see lab/lab.py `lifecycle`) sets it
on the mgmt and trust ENIs it attaches, so that AWS deletes them with the instance; without this
bridge moto keeps them (in use by a terminated instance) and `down`'s residue report lists them.

Usage: python lab/moto_lab.py -H 127.0.0.1 -p PORT   (same arguments as moto_server)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "moto"))
import moto_pano  # noqa: E402,F401  - installs the harness bridges on import
from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces  # noqa: E402

_orig_modify = ElasticNetworkInterfaces.modify_network_interface_attribute


def _modify(self):
    flag = self._get_param("Attachment.DeleteOnTermination")
    if flag is not None:
        eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
        eni.delete_on_termination = str(flag).lower() == "true"
    return _orig_modify(self)


ElasticNetworkInterfaces.modify_network_interface_attribute = _modify

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
