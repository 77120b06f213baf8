"""The pgkms conformance toolkit: test vectors, adapter harness and crash-state explorer."""
