# ruff: noqa: E501 - one line per corpus file: a table
"""Generate the bad-input corpus of issue 13 (suite 5): files that must each give exit 2, one
line on stderr, no traceback.

Run from the repository root: ``.venv/bin/python tests/data/bad/make_corpus.py``. It rewrites
every file under ``tests/data/bad/`` (besides itself) and ``manifest.json``, which lists each
file with the command that reads it (``{file}`` stands for its path). The files are committed:
tests read them, never regenerate them. Keys are fresh on every run, so regenerated files
differ in bytes, not in kind.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests/ (for hostile.py)

import hostile  # noqa: E402
from asn1crypto import cms, keys  # noqa: E402
from asn1crypto import pkcs12 as apkcs12  # noqa: E402
from asn1crypto import x509 as ax509  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: E402

from sectigo_chain.testing.lab import LabHierarchy  # noqa: E402

AT = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
PEM, DER = serialization.Encoding.PEM, serialization.Encoding.DER
INSPECT = ["inspect", "{file}"]
INSPECT_PW = ["inspect", "{file}", "--password-env", "BAD_CORPUS_PASSWORD"]  # the test sets "pw"
ROLLBACK = ["rollback", "{file}"]
FLEET = ["fleet", "plan", "{file}"]
RENDER_PLAN = ["render", "{file}"]
PARAMS = ["render", "import_certificate", "--params-json", "{file}"]
PROFILE = ["check", "127.0.0.1:9", "--profile", "mine={file}"]
RESUME = ["fleet", "plan", "tests/data/bad/ok-inventory.toml", "--resume", "{file}"]

entries: list[dict[str, object]] = []


def put(rel: str, data: bytes | str, command: list[str], what: str) -> None:
    path = HERE / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    entries.append({"file": rel, "command": command, "what": what})


def pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der)
    return (
        b"-----BEGIN "
        + label.encode()
        + b"-----\n"
        + body
        + b"-----END "
        + label.encode()
        + b"-----\n"
    )


def main() -> None:
    for child in HERE.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
    rng = random.Random(13)
    lab = LabHierarchy.create(at=AT)
    r36 = lab.r36.cert.public_bytes(DER)
    rsa_root, ecc_root = lab.self_signed_root("RSA"), lab.self_signed_root("ECC")
    leaf = lab.issue_leaf(("www.example.test",), at=AT)
    other = lab.issue_leaf(("other.example.test",), at=AT)

    # ---------------------------------------------------------------- certificates (inspect)
    c = "certificates/"
    put(c + "empty.cer", b"", INSPECT, "an empty file")
    put(c + "whitespace.cer", b" \n\t\r\n  ", INSPECT, "only whitespace")
    put(c + "text.cer", "hello, this is not a certificate\n", INSPECT, "plain text")
    put(c + "zeros.cer", bytes(512), INSPECT, "NUL bytes")
    put(c + "one-byte.cer", b"\x30", INSPECT, "a lone SEQUENCE tag")
    put(c + "sequence-no-body.cer", b"\x30\x82\xff\xff", INSPECT, "a SEQUENCE longer than the file")
    for i in range(5):
        put(
            c + f"random-{i}.cer",
            b"\x30" + rng.randbytes(300 + 97 * i),
            INSPECT,
            "DER-looking noise",
        )
    for cut in (10, 60, 150, 400, 700, len(r36) - 1):
        put(
            c + f"truncated-at-{cut}.cer",
            r36[:cut],
            INSPECT,
            f"a DER certificate cut at {cut} bytes",
        )
    put(
        c + "trailing-garbage.cer",
        r36 + b"\x00garbage",
        INSPECT,
        "a certificate with bytes after it",
    )
    flipped = bytearray(r36)
    flipped[4] = 0x31
    put(c + "wrong-inner-tag.cer", bytes(flipped), INSPECT, "the TBS is a SET, not a SEQUENCE")
    put(
        c + "duplicate-extension.cer",
        hostile.duplicate_extension(rsa_root.cert, rsa_root.key),
        INSPECT,
        "one extension twice",
    )
    put(c + "bad-rsa-key.cer", hostile.bad_key(rsa_root.cert), INSPECT, "self-named, RSA modulus 0")
    put(
        c + "bad-ec-key.cer",
        hostile.bad_key(ecc_root.cert),
        INSPECT,
        "self-named, EC point off the curve",
    )
    put(
        c + "bad-ec-key-intermediate.cer",
        hostile.bad_key(lab.e36.cert),
        INSPECT,
        "an intermediate with a broken EC key",
    )
    put(
        c + "bad-utf8string.cer",
        hostile.bad_string_subject(lab.r36.cert, 0x0C),
        INSPECT,
        "invalid UTF8String name",
    )
    put(
        c + "bad-teletexstring.cer",
        hostile.bad_string_subject(lab.r36.cert, 0x14),
        INSPECT,
        "invalid TeletexString name",
    )
    put(c + "utf16-text.cer", "\ufeffnot a certificate".encode("utf-16"), INSPECT, "UTF-16 text")
    put(c + "gzip.cer", b"\x1f\x8b\x08\x00" + rng.randbytes(64), INSPECT, "a gzip file")
    put(c + "zip.cer", b"PK\x03\x04" + rng.randbytes(64), INSPECT, "a zip file")
    key_der = leaf.key.private_bytes(
        DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    put(c + "private-key.der", key_der, INSPECT, "a DER private key, no certificate")
    put(
        c + "name-only.der",
        lab.r36.cert.subject.public_bytes(),
        INSPECT,
        "a DER name, not a certificate",
    )

    # ---------------------------------------------------------------- PEM (inspect)
    p = "pem/"
    r36_pem = lab.r36.cert.public_bytes(PEM)
    put(p + "begin-only.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n", INSPECT, "BEGIN without END")
    put(
        p + "many-begins.pem",
        b"-----BEGIN CERTIFICATE-----\n" * 5000,
        INSPECT,
        "5,000 BEGIN lines, no END (quadratic before)",
    )
    put(
        p + "mismatched-end.pem",
        r36_pem.replace(b"END CERTIFICATE", b"END PKCS7"),
        INSPECT,
        "END of another label",
    )
    put(
        p + "nested-begin.pem",
        r36_pem.replace(b"MII", b"-----BEGIN CERTIFICATE-----\nMII", 1),
        INSPECT,
        "a BEGIN inside a block",
    )
    put(
        p + "bad-base64.pem",
        b"-----BEGIN CERTIFICATE-----\n!!!not base64***\n-----END CERTIFICATE-----\n",
        INSPECT,
        "not base64",
    )
    put(p + "garbage-body.pem", pem("CERTIFICATE", rng.randbytes(400)), INSPECT, "base64 of noise")
    put(
        p + "truncated-body.pem",
        pem("CERTIFICATE", r36[:300]),
        INSPECT,
        "a truncated certificate inside PEM",
    )
    put(
        p + "key-only.pem",
        leaf.key.private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        INSPECT,
        "a key, no certificate",
    )
    mismatch = other.cert.public_bytes(PEM) + leaf.key.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    put(p + "key-mismatch.pem", mismatch, INSPECT, "a key that is not the certificate's")
    enc = leaf.key.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    put(
        p + "encrypted-key-no-password.pem",
        leaf.cert.public_bytes(PEM) + enc,
        INSPECT,
        "an encrypted key, no password given",
    )
    put(
        p + "encrypted-key-wrong-password.pem",
        leaf.cert.public_bytes(PEM)
        + leaf.key.private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"other")
        ),
        INSPECT_PW,
        "an encrypted key, wrong password",
    )
    info = keys.EncryptedPrivateKeyInfo.load(
        leaf.key.private_bytes(
            DER, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
        )
    )
    info["encryption_algorithm"]["parameters"]["key_derivation_func"]["parameters"][
        "iteration_count"
    ] = 2**31 - 1
    put(
        p + "huge-pbkdf2-key.pem",
        leaf.cert.public_bytes(PEM) + pem("ENCRYPTED PRIVATE KEY", info.dump(force=True)),
        INSPECT_PW,
        "PBKDF2 with 2^31-1 iterations",
    )
    put(
        p + "unencrypted-key-with-password.pem",
        leaf.cert.public_bytes(PEM)
        + leaf.key.private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        INSPECT_PW,
        "a password for a key that has none",
    )
    put(
        p + "garbage-key.pem",
        leaf.cert.public_bytes(PEM) + pem("PRIVATE KEY", rng.randbytes(200)),
        INSPECT,
        "a key block of noise",
    )
    put(
        p + "csr-only.pem",
        pem("CERTIFICATE REQUEST", rng.randbytes(100)),
        INSPECT,
        "a request, no certificate",
    )
    put(p + "crl-only.pem", pem("X509 CRL", rng.randbytes(100)), INSPECT, "a CRL, no certificate")
    put(
        p + "duplicate-extension.pem",
        pem("CERTIFICATE", hostile.duplicate_extension(rsa_root.cert, rsa_root.key)),
        INSPECT,
        "one extension twice",
    )
    put(
        p + "bad-key.pem",
        pem("CERTIFICATE", hostile.bad_key(ecc_root.cert)),
        INSPECT,
        "EC point off the curve",
    )
    put(
        p + "bad-utf8string.pem",
        pem("CERTIFICATE", hostile.bad_string_subject(lab.r36.cert)),
        INSPECT,
        "invalid UTF8String",
    )
    put(
        p + "good-then-bad.pem",
        r36_pem + pem("CERTIFICATE", hostile.bad_key(ecc_root.cert)),
        INSPECT,
        "a good certificate, then a damaged one",
    )
    put(
        p + "crlf-truncated.pem",
        r36_pem.replace(b"\n", b"\r\n")[:-40],
        INSPECT,
        "CRLF line ends, END line cut",
    )
    put(
        p + "latin1-junk.pem",
        b"-----BEGIN CERTIFICATE-----\n\xe9\xe8\xff\n-----END CERTIFICATE-----\n",
        INSPECT,
        "8-bit bytes in the body",
    )

    # ---------------------------------------------------------------- PKCS#7 (inspect)
    k = "pkcs7/"
    put(k + "type-data.p7b", hostile.pkcs7_data(), INSPECT, "PKCS#7 of type data")
    put(k + "type-data.pem", pem("PKCS7", hostile.pkcs7_data()), INSPECT, "PEM PKCS#7 of type data")
    p7 = serialization.pkcs7.serialize_certificates([lab.r36.cert, lab.r46_cross], DER)
    for cut in (20, 200, len(p7) // 2, len(p7) - 2):
        put(k + f"truncated-at-{cut}.p7b", p7[:cut], INSPECT, f"a .p7b cut at {cut} bytes")
    empty_signed = cms.ContentInfo(
        {
            "content_type": "signed_data",
            "content": cms.SignedData(
                {
                    "version": "v1",
                    "digest_algorithms": [],
                    "encap_content_info": {"content_type": "data"},
                    "signer_infos": [],
                }
            ),
        }
    ).dump()
    put(k + "no-certificates.p7b", empty_signed, INSPECT, "signedData holding no certificate")
    damaged = ax509.Certificate.load(hostile.duplicate_extension(rsa_root.cert, rsa_root.key))
    with_bad = cms.ContentInfo(
        {
            "content_type": "signed_data",
            "content": cms.SignedData(
                {
                    "version": "v1",
                    "digest_algorithms": [],
                    "encap_content_info": {"content_type": "data"},
                    "certificates": [damaged],
                    "signer_infos": [],
                }
            ),
        }
    ).dump()
    put(
        k + "damaged-certificate.p7b",
        with_bad,
        INSPECT,
        "a .p7b holding a certificate with a duplicate extension",
    )
    put(
        k + "bad-base64.pem",
        b"-----BEGIN PKCS7-----\n@@@@\n-----END PKCS7-----\n",
        INSPECT,
        "not base64",
    )

    # ---------------------------------------------------------------- PFX (inspect --password-env)
    f = "pfx/"
    good_pfx = pkcs12.serialize_key_and_certificates(
        b"site", leaf.key, leaf.cert, [lab.r36.cert], serialization.BestAvailableEncryption(b"pw")
    )
    for cut in (12, 100, len(good_pfx) // 2, len(good_pfx) - 3):
        put(f + f"truncated-at-{cut}.pfx", good_pfx[:cut], INSPECT_PW, f"a PFX cut at {cut} bytes")
    put(
        f + "wrong-password.pfx",
        pkcs12.serialize_key_and_certificates(
            b"site", leaf.key, leaf.cert, None, serialization.BestAvailableEncryption(b"not-pw")
        ),
        INSPECT_PW,
        "another password",
    )
    put(f + "no-password-given.pfx", good_pfx, INSPECT, "no password given")
    put(
        f + "no-key.pfx",
        pkcs12.serialize_key_and_certificates(
            b"site", None, leaf.cert, None, serialization.BestAvailableEncryption(b"pw")
        ),
        INSPECT_PW,
        "a certificate without its key",
    )
    huge = apkcs12.Pfx.load(good_pfx)
    huge["mac_data"]["iterations"] = 2**31 - 1
    put(
        f + "huge-mac-iterations.pfx",
        huge.dump(force=True),
        INSPECT_PW,
        "MAC with 2^31-1 iterations",
    )
    bad_mac = bytearray(good_pfx)
    bad_mac[-30] ^= 0xFF
    put(f + "corrupt-mac.pfx", bytes(bad_mac), INSPECT_PW, "a MAC that does not verify")
    dup = x509.load_der_x509_certificate(hostile.duplicate_extension(leaf.cert, lab.r36.key))
    put(
        f + "damaged-certificate.pfx",
        pkcs12.serialize_key_and_certificates(
            b"site", leaf.key, dup, None, serialization.BestAvailableEncryption(b"pw")
        ),
        INSPECT_PW,
        "a PFX whose certificate has a duplicate extension",
    )

    # ---------------------------------------------------------------- journals (rollback)
    j = "journals/"
    put(j + "empty.json", b"", ROLLBACK, "empty")
    put(j + "not-json.json", "this is not a journal\n", ROLLBACK, "text")
    put(j + "array.json", "[]", ROLLBACK, "a JSON array")
    put(j + "string.json", '"journal"', ROLLBACK, "a JSON string")
    put(
        j + "other-format.json",
        json.dumps({"format": "something-else/1", "steps": []}),
        ROLLBACK,
        "another format",
    )
    put(
        j + "no-format.json",
        json.dumps({"target": "sim://broken-r46"}),
        ROLLBACK,
        "no format marker",
    )
    put(j + "binary.json", rng.randbytes(300), ROLLBACK, "binary noise")
    put(j + "deep-nesting.json", "[" * 100_000 + "]" * 100_000, ROLLBACK, "100,000 nested arrays")
    put(j + "utf16.json", '{"format": "x"}'.encode("utf-16"), ROLLBACK, "UTF-16 JSON")

    # ---------------------------------------------------------------- inventories (fleet plan)
    i = "inventories/"
    ok_host = '[[hosts]]\nname = "web01"\ntarget = "sim://broken-r46"\n'
    put(i + "bad-toml.toml", "[[hosts]\nname = \n", FLEET, "TOML syntax error")
    put(i + "bad-yaml.yaml", "hosts:\n  - name: web01\n   target: [\n", FLEET, "YAML syntax error")
    put(i + "bad-json.json", '{"hosts": [', FLEET, "JSON syntax error")
    put(i + "no-hosts.toml", '[defaults]\nsite = "Default Web Site"\n', FLEET, "no hosts")
    put(i + "hosts-not-a-list.json", json.dumps({"hosts": "web01"}), FLEET, "hosts is a string")
    put(
        i + "host-without-target.toml",
        '[[hosts]]\nname = "web01"\n',
        FLEET,
        "a host without target",
    )
    put(
        i + "bad-scheme.toml",
        '[[hosts]]\nname = "web01"\ntarget = "ssh://web01"\n',
        FLEET,
        "an unknown target scheme",
    )
    put(
        i + "password-in-target.toml",
        '[[hosts]]\nname = "web01"\ntarget = "winrm://admin:Hunter2pw@web01"\n',
        FLEET,
        "a password inside the target",
    )
    put(i + "duplicate-names.toml", ok_host * 2, FLEET, "two hosts with one name")
    put(i + "bad-port.toml", ok_host + "port = 70000\n", FLEET, "port out of range")
    put(i + "unknown-key.toml", ok_host + 'colour = "blue"\n', FLEET, "an unknown setting")
    put(
        i + "faults-on-winrm.toml",
        '[[hosts]]\nname = "web01"\ntarget = "winrm://web01"\n[hosts.sim_faults]\n',
        FLEET,
        "sim_faults on a WinRM host",
    )
    put(i + "unknown-format.ini", "[hosts]\nweb01\n", FLEET, "an .ini file")
    put(i + "not-utf8.toml", b'[[hosts]]\nname = "w\xe9b01"\n', FLEET, "Latin-1 bytes")
    put(
        i + "name-with-newline.json",
        json.dumps({"hosts": [{"name": "web\n01", "target": "sim://broken-r46"}]}),
        FLEET,
        "a name with a newline",
    )
    put(i + "top-level-list.json", json.dumps([{"name": "web01"}]), FLEET, "a list at the top")
    put(i + "empty.toml", b"", FLEET, "an empty file")

    # ---------------------------------------------------------------- plans (render PLAN)
    pl = "plans/"
    put(pl + "not-json.json", "actions: restart\n", RENDER_PLAN, "not JSON")
    put(pl + "no-actions.json", json.dumps({"target": "sim://x"}), RENDER_PLAN, "no actions")
    put(pl + "empty-actions.json", json.dumps({"actions": []}), RENDER_PLAN, "no action")
    put(
        pl + "action-not-object.json",
        json.dumps({"actions": ["restart"]}),
        RENDER_PLAN,
        "an action that is a string",
    )
    put(
        pl + "unknown-template.json",
        json.dumps({"actions": [{"template": "format_disk", "params": {}}]}),
        RENDER_PLAN,
        "an unknown template",
    )
    put(
        pl + "params-not-object.json",
        json.dumps({"actions": [{"template": "restart", "params": [1]}]}),
        RENDER_PLAN,
        "params that are a list",
    )
    put(
        pl + "bad-param-value.json",
        json.dumps(
            {
                "actions": [
                    {
                        "template": "remove_certificate",
                        "params": {"thumbprint": "zz", "store": "Root"},
                    }
                ]
            }
        ),
        RENDER_PLAN,
        "a thumbprint that is not one",
    )
    put(
        pl + "unknown-param.json",
        json.dumps({"actions": [{"template": "restart", "params": {"rm": "-rf"}}]}),
        RENDER_PLAN,
        "an unknown parameter",
    )
    put(
        pl + "too-many-actions.json",
        json.dumps({"actions": [{"template": "restart", "params": {}}] * 2_000}),
        RENDER_PLAN,
        "2,000 actions (at most 200 are accepted)",
    )
    put(
        pl + "deep-nesting.json",
        "[" * 100_000 + "]" * 100_000,
        RENDER_PLAN,
        "100,000 nested arrays",
    )
    put(pl + "not-utf8.json", b'{"actions": "\xff"}', RENDER_PLAN, "Latin-1 bytes")

    # ---------------------------------------------------------------- desired-state parameters
    d = "params/"
    put(d + "not-object.json", "[1, 2]", PARAMS, "a list, not parameters")
    put(d + "not-json.json", "store=Root\n", PARAMS, "not JSON")
    put(d + "unknown-param.json", json.dumps({"evil": "x"}), PARAMS, "an unknown parameter")
    put(
        d + "bad-store.json",
        json.dumps({"store": "C:\\Windows", "cert_b64": "AA=="}),
        PARAMS,
        "a store that is not one",
    )
    put(
        d + "bad-cert.json",
        json.dumps({"store": "CA", "cert_b64": "not base64!"}),
        PARAMS,
        "a certificate that is not base64",
    )
    put(d + "wrong-types.json", json.dumps({"store": 5, "cert_b64": None}), PARAMS, "wrong types")

    # ---------------------------------------------------------------- trust bundles (check --profile)
    t = "profiles/"
    put(t + "empty.pem", b"", PROFILE, "empty")
    put(t + "text.pem", "root certificates go here\n", PROFILE, "text")
    put(
        t + "begin-only.pem",
        b"-----BEGIN CERTIFICATE-----\n" * 2000,
        PROFILE,
        "BEGIN lines without END",
    )
    put(
        t + "key-only.pem",
        leaf.key.private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        PROFILE,
        "a key, no certificate",
    )
    put(
        t + "damaged.pem",
        pem("CERTIFICATE", hostile.bad_key(ecc_root.cert)),
        PROFILE,
        "a damaged anchor",
    )

    # ---------------------------------------------------------------- fleet reports (--resume)
    r = "reports/"
    put(r + "not-json.json", "done\n", RESUME, "not JSON")
    put(r + "wrong-shape.json", json.dumps({"hosts": 5}), RESUME, "the wrong shape")
    put(r + "empty.json", b"", RESUME, "empty")
    put(r + "binary.json", rng.randbytes(200), RESUME, "binary noise")

    (HERE / "ok-inventory.toml").write_text(ok_host, encoding="utf-8")
    doc = {"generated_by": "tests/data/bad/make_corpus.py", "count": len(entries), "cases": entries}
    (HERE / "manifest.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"{len(entries)} bad files under {HERE}")


if __name__ == "__main__":
    main()
