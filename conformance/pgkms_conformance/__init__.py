"""pgkms_conformance: test vectors, adapter harness, crash explorer and traceability for pgkms."""
