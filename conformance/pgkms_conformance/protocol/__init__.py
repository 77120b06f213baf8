"""The adapter protocol (spec: Adapter protocol): the client side, and its JSON Schemas."""
