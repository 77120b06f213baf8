"""The adapter protocol (spec: Adapter protocol): the client side, its JSON Schemas, and the
definition they, the chapter's reference sections and the guide's table are generated from."""
