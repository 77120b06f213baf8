"""The mutant zoo: deliberately wrong variants of the independent implementation."""
