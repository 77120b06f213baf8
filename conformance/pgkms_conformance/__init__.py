"""pgkms_conformance: test vectors, the adapter-protocol harness and the crash-state explorer."""
