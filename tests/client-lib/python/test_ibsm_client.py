"""Unit tests of the Python client's signing (client-lib/python/ibsm_client.py).

The signing bytes must be the bytes of docs/signature-format.md: the worked
example's hex block is read from the doc itself, so the doc, the C++ test
(tests/shared/alert_signature_test.cc) and this one check the same bytes.

Usage: test_ibsm_client.py SOURCE_DIR (with PYTHONPATH holding the client
and the generated stubs, as bin/ibsm-py sets it).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import text_format

import ibsm_client
from ibsm.v1 import alert_pb2

SOURCE_DIR = None

WORKED_EXAMPLE = """
id: "civ-2025-0001"
topic: "border.incident"
classification: "RESTRICTED"
releasable_to: "MLI"
releasable_to: "ECOWAS"
severity: SEVERITY_HIGH
created_at { seconds: 1735725600 }
location { latitude: 5.3 longitude: -4.01 place_name: "Noe border post" }
attributes { key: "vehicle" value: "white pickup" }
attributes { key: "direction" value: "north" }
content_type: "text/plain"
payload: "Vehicle crossed without stopping"
tlp: "AMBER"
originator: "CIV/police"
signature: "any signature"
signing_chain: "any certificate"
"""


def doc_hex():
    with open(os.path.join(SOURCE_DIR, "docs", "signature-format.md")) as f:
        doc = f.read()
    block = re.search(r"<!-- signing-bytes-hex:begin -->\n```\n(.*?)```\n"
                      r"<!-- signing-bytes-hex:end -->", doc, re.S)
    assert block, "no signing-bytes-hex block in docs/signature-format.md"
    return "".join(block.group(1).split())


def alert(text):
    return text_format.Parse(text, alert_pb2.Alert())


def fields_only(text):
    """The signing bytes of an alert without the context line."""
    return ibsm_client.signing_bytes(alert(text))[
        len(ibsm_client.SIGNING_CONTEXT):].hex()


class SigningBytesTest(unittest.TestCase):
    def test_worked_example_of_the_doc(self):
        data = ibsm_client.signing_bytes(alert(WORKED_EXAMPLE))
        self.assertEqual(len(data), 239)
        self.assertEqual(data.hex(), doc_hex())

    def test_map_order_is_by_key_not_insertion(self):
        a = alert(WORKED_EXAMPLE)
        b = alert(WORKED_EXAMPLE)
        b.attributes.clear()
        b.attributes["direction"] = "north"
        b.attributes["vehicle"] = "white pickup"
        self.assertEqual(ibsm_client.signing_bytes(a),
                         ibsm_client.signing_bytes(b))

    def test_list_order_is_content(self):
        a = alert(WORKED_EXAMPLE)
        del a.releasable_to[:]
        a.releasable_to.extend(["ECOWAS", "MLI"])
        self.assertNotEqual(ibsm_client.signing_bytes(a).hex(), doc_hex())

    def test_rules_of_the_doc(self):
        self.assertEqual(fields_only('location {}'), "4a00")  # rule 6
        self.assertEqual(fields_only(''), "")
        self.assertEqual(fields_only('attributes { key: "" value: "" }'),
                         "52040a001200")  # rule 8
        self.assertEqual(fields_only('created_at { nanos: -1 }'),  # rule 3
                         "3a0b10ffffffffffffffffff01")
        self.assertEqual(fields_only('location { latitude: 5.3 }'),
                         "4a09093333333333331540")  # rule 5
        self.assertEqual(fields_only('originator: "CIV/police"')[:4], "a201")
        self.assertEqual(fields_only('orcon: false severity: SEVERITY_UNSPECIFIED'),
                         "")

    def test_same_as_protobuf_deterministic_serialization(self):
        a = alert(WORKED_EXAMPLE)
        a.references.add(originator="MLI/customs", alert_id="x", kind=1)
        a.expires_at.seconds = 1735729200
        a.orcon = True
        expected = alert_pb2.Alert()
        expected.CopyFrom(a)
        expected.ClearField("signature")
        expected.ClearField("signing_chain")
        self.assertEqual(
            ibsm_client.signing_bytes(a),
            ibsm_client.SIGNING_CONTEXT +
            expected.SerializeToString(deterministic=True))

    def test_unknown_fields_are_refused(self):
        a = alert_pb2.Alert()
        a.ParseFromString(bytes.fromhex("0a0141") + bytes.fromhex("b80101"))
        with self.assertRaises(ibsm_client.IbsmError) as e:
            ibsm_client.signing_bytes(a)
        self.assertIn("unknown fields", str(e.exception))


class AlertSignerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="ibsm-py-pki.")
        subprocess.run(["bash", os.path.join(SOURCE_DIR, "certs",
                                             "make-dev-pki.sh"),
                        cls.pki, "--quiet"], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pki)

    def path(self, name):
        return os.path.join(self.pki, name)

    def test_signs_as_the_certificate_with_its_chain(self):
        signer = ibsm_client.AlertSigner(self.path("agency-CIV_police-chain.pem"),
                                         self.path("agency-CIV_police.key"))
        self.assertEqual(signer.originator, "CIV/police")
        a = alert(WORKED_EXAMPLE)
        a.ClearField("originator")
        a.ClearField("created_at")
        signer.sign(a)
        self.assertEqual(a.originator, "CIV/police")
        self.assertTrue(a.HasField("created_at"))
        self.assertEqual(len(a.signing_chain), 2)  # agency, then CIV's CA
        leaf = x509.load_der_x509_certificate(a.signing_chain[0])
        ca = x509.load_der_x509_certificate(a.signing_chain[1])
        self.assertEqual(leaf.issuer, ca.subject)
        with open(self.path("CIV-ca.pem"), "rb") as f:
            self.assertEqual(ca, x509.load_pem_x509_certificate(f.read()))
        self.assertTrue(70 <= len(a.signature) <= 72)
        leaf.public_key().verify(a.signature, ibsm_client.signing_bytes(a),
                                 ec.ECDSA(hashes.SHA256()))
        a.payload += b"!"
        with self.assertRaises(InvalidSignature):
            leaf.public_key().verify(a.signature, ibsm_client.signing_bytes(a),
                                     ec.ECDSA(hashes.SHA256()))

    def test_another_originator_is_refused(self):
        signer = ibsm_client.AlertSigner(self.path("agency-CIV_police-chain.pem"),
                                         self.path("agency-CIV_police.key"))
        a = alert('id: "x" originator: "CIV/customs"')
        with self.assertRaises(ibsm_client.IbsmError) as e:
            signer.sign(a)
        self.assertIn("CIV/customs", str(e.exception))

    def test_key_of_another_certificate_is_refused(self):
        with self.assertRaises(ibsm_client.IbsmError) as e:
            ibsm_client.AlertSigner(self.path("agency-CIV_police-chain.pem"),
                                    self.path("agency-CIV_customs.key"))
        self.assertIn("is not the key", str(e.exception))

    def test_certificate_without_agency_identity_is_refused(self):
        with self.assertRaises(ibsm_client.IbsmError) as e:
            ibsm_client.AlertSigner(self.path("no-uri-chain.pem"),
                                    self.path("no-uri.key"))
        self.assertIn("spiffe://ibsm/NODE/agency", str(e.exception))


if __name__ == "__main__":
    SOURCE_DIR = sys.argv.pop(1)
    unittest.main(verbosity=2)
